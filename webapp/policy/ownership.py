"""Ownership and classification controls: someone answers for each database, and production
databases say how critical they are and what data they hold (which other controls depend on)."""

from types import MappingProxyType

from webapp.policy.base import Context, Control, Result, Severity, in_scope, register
from webapp.policy.facts import AssetFacts


@register
class OwnerSet(Control):
    id = "ownership.owner_set"
    family = "ownership"
    title = "Owner set"
    description = "The asset names an owner (a team or person) who answers for it."
    severity = Severity.medium
    references = MappingProxyType(
        {
            "soc2": ("CC6.1",),
            "cis_controls": ("1.1",),
        }
    )

    def check(self, asset: AssetFacts, context: Context) -> Result:
        # Never unknown: the owner is the inventory's own field, so blank is a plain fail.
        owner = asset.owner
        if owner is None or not owner.strip():
            return Result.failed("no owner is set")
        return Result.passed(f"owned by {owner}")


@register
class ClassifiedInProduction(Control):
    id = "ownership.classified"
    family = "ownership"
    title = "Criticality and classification set in production"
    description = (
        "Production databases have a criticality (low to critical) and a data classification "
        "(public to restricted), which backup and exposure requirements depend on."
    )
    severity = Severity.medium
    references = MappingProxyType(
        {
            "soc2": ("CC3.2", "CC6.1"),
            "gdpr": ("Art. 32(2)",),
            "cis_controls": ("3.7",),
        }
    )

    def applies_to(self, asset: AssetFacts) -> bool:
        return in_scope(asset) and asset.production

    def check(self, asset: AssetFacts, context: Context) -> Result:
        # Never unknown, like the owner: a missing value is what this control reports.
        crit, cls = asset.criticality, asset.data_classification
        if crit is None and cls is None:
            return Result.failed("neither criticality nor data classification is set")
        if crit is None:
            return Result.failed("criticality is not set")
        if cls is None:
            return Result.failed("data classification is not set")
        return Result.passed(f"criticality {crit.value}, data classification {cls.value}")

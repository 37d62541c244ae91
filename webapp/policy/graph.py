"""Controls that read the dependency graph (SPEC §3 relationships).

They never query: the evaluation loads the relationships of the assets it evaluates in one go and
hands them over as `Context.neighbours` (asset id -> [Neighbour(kind, direction, facts)]). When a
context carries no graph at all (`neighbours=None`), these controls say `unknown` rather than
guess. Neighbours in the trash or merged away are ignored: they are not part of the estate.
"""

from collections.abc import Sequence
from types import MappingProxyType

from webapp.models.enums import Criticality, Environment, RelationshipKind
from webapp.policy.base import Context, Control, Result, Severity, in_scope, plural, register
from webapp.policy.facts import AssetFacts, Neighbour

GRAPH_NOT_LOADED = "the dependency graph was not loaded for this evaluation"

# How many assets a reason names before "and N more".
_NAMED = 5

_NON_PRODUCTION = (Environment.staging, Environment.development, Environment.test)


def _names(assets: Sequence[AssetFacts]) -> str:
    shown = ", ".join(a.label for a in assets[:_NAMED])
    rest = len(assets) - _NAMED
    return f"{shown} and {rest} more" if rest > 0 else shown


@register
class ProductionDependsOnProduction(Control):
    id = "graph.prod_depends_on_prod"
    family = "graph"
    title = "Production does not depend on non-production"
    description = (
        "A production asset's depends_on links lead only to production assets: an outage or a "
        "test change in staging, development or test must not take production down."
    )
    severity = Severity.high
    uses_graph = True
    references = MappingProxyType(
        {
            "soc2": ("A1.2", "CC8.1"),
            "gdpr": ("Art. 32(1)(b)",),
            "cis_controls": ("16.8",),
        }
    )

    def applies_to(self, asset: AssetFacts) -> bool:
        return in_scope(asset) and asset.production

    def check(self, asset: AssetFacts, context: Context) -> Result:
        if context.neighbours is None:
            return Result.unknown(GRAPH_NOT_LOADED)
        dependencies = [
            n.asset
            for n in context.neighbours_of(asset.id)
            if n.kind is RelationshipKind.depends_on and n.direction == "out" and n.asset.live
        ]
        if not dependencies:
            return Result.passed("depends on nothing in the inventory")
        non_production = [a for a in dependencies if a.environment in _NON_PRODUCTION]
        if non_production:
            return Result.failed(
                f"depends on {plural(len(non_production), 'non-production asset')}: "
                f"{_names(non_production)}"
            )
        unclear = [a for a in dependencies if a.environment is Environment.unknown]
        if unclear:
            return Result.unknown(
                f"depends on {plural(len(unclear), 'asset')} whose environment is not known: "
                f"{_names(unclear)}"
            )
        if len(dependencies) == 1:
            return Result.passed(f"its one dependency, {dependencies[0].name}, is in production")
        return Result.passed(f"all {len(dependencies)} dependencies are in production")


def _redundancy(neighbours: Sequence[Neighbour]) -> list[str]:
    """What keeps a copy of the asset's data: its replicas and backup targets (outgoing
    replicates_to / backs_up_to), and the primary it is itself a replica of (incoming
    replicates_to: a replica pair protects both sides)."""
    found = []
    for n in neighbours:
        if not n.asset.live:
            continue
        if n.direction == "out" and n.kind is RelationshipKind.replicates_to:
            found.append(f"replicates to {n.asset.name}")
        elif n.direction == "out" and n.kind is RelationshipKind.backs_up_to:
            found.append(f"backs up to {n.asset.name}")
        elif n.direction == "in" and n.kind is RelationshipKind.replicates_to:
            found.append(f"replica of {n.asset.name}")
    return found


@register
class CriticalHasReplicaOrBackupTarget(Control):
    id = "graph.critical_has_copy"
    family = "graph"
    title = "Critical asset has a replica or a backup target"
    description = (
        "A critical-criticality asset has at least one replicates_to or backs_up_to link in the "
        "inventory (or is itself the replica of a primary), so losing it does not lose its data."
    )
    severity = Severity.high
    uses_graph = True
    references = MappingProxyType(
        {
            "soc2": ("A1.2",),
            "gdpr": ("Art. 32(1)(b)", "Art. 32(1)(c)"),
        }
    )

    def applies_to(self, asset: AssetFacts) -> bool:
        return in_scope(asset) and asset.criticality is Criticality.critical

    def check(self, asset: AssetFacts, context: Context) -> Result:
        if context.neighbours is None:
            return Result.unknown(GRAPH_NOT_LOADED)
        copies = _redundancy(context.neighbours_of(asset.id))
        if not copies:
            return Result.failed(
                "a critical asset with no replica (replicates_to) and no backup target "
                "(backs_up_to) in the inventory"
            )
        shown = "; ".join(copies[:_NAMED])
        more = len(copies) - _NAMED
        return Result.passed(shown + (f"; and {more} more" if more > 0 else ""))

"""Network exposure controls."""

from types import MappingProxyType

from webapp.policy.base import Context, Control, Result, Severity, register
from webapp.policy.facts import AssetFacts


@register
class NotPubliclyAccessible(Control):
    id = "network.not_public"
    family = "network"
    title = "Not publicly accessible"
    description = (
        "The database cannot be reached from the internet (RDS PubliclyAccessible false, no "
        "public IP on Cloud SQL or Azure, no scan from outside finding it open)."
    )
    severity = Severity.critical
    references = MappingProxyType(
        {
            "soc2": ("CC6.1", "CC6.6"),
            "gdpr": ("Art. 32(1)(b)",),
            "cis_aws": ("2.3.3",),
            "aws_fsbp": ("RDS.2",),
        }
    )

    def check(self, asset: AssetFacts, context: Context) -> Result:
        if asset.publicly_accessible is None:
            return Result.unknown("public accessibility not known")
        if asset.publicly_accessible:
            return Result.failed("the database is publicly accessible")
        return Result.passed("the database is not publicly accessible")

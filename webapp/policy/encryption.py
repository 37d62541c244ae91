"""Encryption controls: data at rest, and connections that must use TLS."""

from types import MappingProxyType

from webapp.policy.base import Context, Control, Result, Severity, register
from webapp.policy.facts import AssetFacts


@register
class EncryptedAtRest(Control):
    id = "encryption.at_rest"
    family = "encryption"
    title = "Encrypted at rest"
    description = (
        "The database's storage (data files, and with them its snapshots and backups where the "
        "platform encrypts them together) is encrypted. Applies to every live asset that is not "
        "decommissioned."
    )
    severity = Severity.high
    references = MappingProxyType(
        {
            "soc2": ("CC6.1",),
            "gdpr": ("Art. 32(1)(a)",),
            "cis_controls": ("3.11",),
            "cis_aws": ("2.3.1",),
            "aws_fsbp": ("RDS.3",),
        }
    )

    def check(self, asset: AssetFacts, context: Context) -> Result:
        if asset.encrypted_at_rest is None:
            return Result.unknown("encryption at rest not known")
        if asset.encrypted_at_rest:
            return Result.passed("storage is encrypted at rest")
        return Result.failed("storage is not encrypted at rest")


@register
class TlsRequired(Control):
    id = "encryption.tls_required"
    family = "encryption"
    title = "TLS required for connections"
    description = (
        "The server refuses connections that do not use TLS (rds.force_ssl, require_secure_transport, "
        "hostssl-only pg_hba, Force Encryption…), so data in transit is always encrypted."
    )
    severity = Severity.high
    references = MappingProxyType(
        {
            "soc2": ("CC6.7",),
            "gdpr": ("Art. 32(1)(a)",),
            "cis_controls": ("3.10",),
        }
    )

    def check(self, asset: AssetFacts, context: Context) -> Result:
        if asset.tls_required is None:
            return Result.unknown("whether TLS is required is not known")
        if asset.tls_required:
            return Result.passed("connections must use TLS")
        return Result.failed("connections without TLS are accepted")

"""Backup and recovery controls: retention by criticality, a recent backup, deletion protection.

They apply to production databases: those are what the organisation must be able to restore
(SPEC §12's example reason speaks of "a high-criticality production database"). Thresholds are
parameters, per criticality where the requirement grows with it.
"""

from types import MappingProxyType

from webapp.models.enums import Criticality
from webapp.policy.base import (
    CRITICALITY_ORDER,
    Context,
    Control,
    Parameter,
    Result,
    Severity,
    in_scope,
    plural,
    register,
)
from webapp.policy.facts import AssetFacts


def _retention_parameter(criticality: Criticality, default: int) -> Parameter:
    return Parameter(
        name=f"min_days_{criticality.value}",
        type=int,
        default=default,
        minimum=1,
        maximum=3650,
        unit="days",
        help=f"Fewest days of backups a {criticality.value}-criticality production database "
        "must keep (point-in-time recovery window or oldest restorable backup).",
    )


@register
class BackupRetention(Control):
    id = "backup.retention"
    family = "backup"
    title = "Backup retention meets the minimum for its criticality"
    description = (
        "Production databases keep backups for at least the number of days their criticality "
        "requires. A retention of 0 days means automated backups are off."
    )
    severity = Severity.high
    parameters = (
        _retention_parameter(Criticality.low, 1),
        _retention_parameter(Criticality.medium, 3),
        _retention_parameter(Criticality.high, 7),
        _retention_parameter(Criticality.critical, 14),
    )
    references = MappingProxyType(
        {
            "soc2": ("A1.2",),
            "gdpr": ("Art. 32(1)(c)",),
            "cis_controls": ("11.2",),
            "aws_fsbp": ("RDS.11",),
        }
    )

    def applies_to(self, asset: AssetFacts) -> bool:
        return in_scope(asset) and asset.production

    def check(self, asset: AssetFacts, context: Context) -> Result:
        params = context.parameters[self.id]
        days = asset.backup_retention_days
        if days is None:
            return Result.unknown("backup retention not known")
        if asset.criticality is None:
            highest = max(params[f"min_days_{c.value}"] for c in CRITICALITY_ORDER)
            if days >= highest:
                return Result.passed(
                    f"backup retention is {plural(days, 'day')}, enough for any criticality"
                )
            return Result.unknown(
                f"backup retention is {plural(days, 'day')}, but criticality is not set, so the "
                "minimum it must meet is not known"
            )
        required = params[f"min_days_{asset.criticality.value}"]
        need = f"a {asset.criticality.value}-criticality production database"
        if days == 0:
            return Result.failed(
                f"automated backups are off (retention 0 days); at least {required} are "
                f"required for {need}"
            )
        if days < required:
            return Result.failed(
                f"backup retention is {plural(days, 'day')}; at least {required} are required "
                f"for {need}"
            )
        return Result.passed(
            f"backup retention is {plural(days, 'day')}; {need} needs at least {required}"
        )


def _age(hours: float) -> str:
    if hours >= 72:
        return f"{plural(int(hours // 24), 'day')} ago"
    if hours < 1:
        return "less than an hour ago"
    return f"{plural(int(hours), 'hour')} ago"


_RECENT_FOR = (Criticality.high, Criticality.critical)


@register
class RecentBackup(Control):
    id = "backup.recent"
    family = "backup"
    title = "Last backup is recent (high and critical)"
    description = (
        "High- and critical-criticality production databases have a backup no older than the "
        "number of hours set for their criticality."
    )
    severity = Severity.high
    parameters = tuple(
        Parameter(
            name=f"max_age_hours_{c.value}",
            type=int,
            default=26,
            minimum=1,
            maximum=8760,
            unit="hours",
            help=f"Oldest the last backup of a {c.value}-criticality production database may be; "
            "26 allows a daily backup two hours of slack.",
        )
        for c in _RECENT_FOR
    )
    references = MappingProxyType(
        {
            "soc2": ("A1.2",),
            "gdpr": ("Art. 32(1)(c)",),
            "cis_controls": ("11.2",),
        }
    )

    def applies_to(self, asset: AssetFacts) -> bool:
        return in_scope(asset) and asset.production and asset.criticality in _RECENT_FOR

    def check(self, asset: AssetFacts, context: Context) -> Result:
        last = asset.last_backup_at
        if last is None:
            return Result.unknown("time of the last backup not known")
        assert asset.criticality is not None  # applies_to
        limit = context.parameters[self.id][f"max_age_hours_{asset.criticality.value}"]
        hours = max((context.now - last).total_seconds() / 3600, 0.0)
        if hours > limit:
            return Result.failed(
                f"last backup was {_age(hours)}; a {asset.criticality.value}-criticality "
                f"production database needs one within {plural(limit, 'hour')}"
            )
        return Result.passed(f"last backup was {_age(hours)} (limit {plural(limit, 'hour')})")


@register
class DeletionProtection(Control):
    id = "backup.deletion_protection"
    family = "backup"
    title = "Deletion protection in production"
    description = (
        "Production databases cannot be deleted by a single API call or click: the platform's "
        "deletion protection is on."
    )
    severity = Severity.medium
    references = MappingProxyType(
        {
            "soc2": ("A1.2",),
            "gdpr": ("Art. 32(1)(b)",),
            "aws_fsbp": ("RDS.7", "RDS.8"),
        }
    )

    def applies_to(self, asset: AssetFacts) -> bool:
        return in_scope(asset) and asset.production

    def check(self, asset: AssetFacts, context: Context) -> Result:
        if asset.deletion_protection is None:
            return Result.unknown("deletion protection not known")
        if asset.deletion_protection:
            return Result.passed("deletion protection is on")
        return Result.failed("deletion protection is off for a production database")

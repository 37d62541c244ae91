"""Lifecycle controls: not missed by the scans that cover it, seen by discovery at all, and an
engine version its vendor still supports (from the dated end-of-life table in data/engine_eol.json)."""

from datetime import timedelta
from types import MappingProxyType

from webapp.models.enums import AssetStatus, Engine
from webapp.policy import eol
from webapp.policy.base import (
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

_STALE_STATUSES = (AssetStatus.active, AssetStatus.unknown)


@register
class NotStale(Control):
    id = "lifecycle.not_stale"
    family = "lifecycle"
    title = "Not stale"
    description = (
        "An active asset that discovery has seen before has not been missed, for the "
        "stale_after_days setting, by the scans that covered it: an nmap scan whose targets and "
        "port list included its host and port, or a cloud listing of its account and region "
        "(SPEC §6). Absence from a scan that did not cover it counts for nothing. Assets never "
        "seen by discovery are the 'not unverified' control's business, not this one's."
    )
    severity = Severity.medium
    references = MappingProxyType(
        {
            "soc2": ("CC6.1", "CC7.1"),
            "cis_controls": ("1.1",),
        }
    )

    def applies_to(self, asset: AssetFacts) -> bool:
        return (
            in_scope(asset) and asset.status in _STALE_STATUSES and asset.last_seen_at is not None
        )

    def check(self, asset: AssetFacts, context: Context) -> Result:
        seen = asset.last_seen_at
        assert seen is not None  # applies_to
        last = f"last seen by discovery {plural(max((context.now - seen).days, 0), 'day')} ago"
        missed = asset.missed_since
        if missed is None:
            return Result.passed(f"{last}; no scan that covered it has missed it since")
        missed_for = plural(max((context.now - missed).days, 0), "day")
        if missed >= context.stale_cutoff:
            return Result.passed(f"{last}; missed by scans that covered it for {missed_for}, "
                                 f"within the limit of {plural(context.stale_after_days, 'day')}")
        limit = plural(context.stale_after_days, "day")
        if asset.status is AssetStatus.unknown:
            return Result.unknown(
                f"status not known; missed by scans that covered it for {missed_for} ({last}), "
                f"which is stale for an active asset (limit {limit})"
            )
        return Result.failed(
            f"missed by scans that covered its host and port, or its cloud account and region, "
            f"for {missed_for} ({last}); active assets missed for {limit} are stale"
        )


@register
class NotUnverified(Control):
    id = "lifecycle.not_unverified"
    family = "lifecycle"
    title = "Not unverified"
    description = (
        "Some discovery import (a scan, a cloud listing, a CMDB export) has reported the asset at "
        "least once. An asset known only from manual entry or the API is unverified (SPEC §6): "
        "nothing shows it exists as recorded."
    )
    severity = Severity.low
    references = MappingProxyType(
        {
            "soc2": ("CC7.1",),
            "cis_controls": ("1.1",),
        }
    )

    def check(self, asset: AssetFacts, context: Context) -> Result:
        # Never unknown: "never seen" is itself the fact this control reports.
        seen = asset.last_seen_at or asset.first_seen_at
        if seen is None:
            return Result.failed("never seen by any discovery import; known only from manual entry")
        return Result.passed(f"seen by discovery, last on {seen.date().isoformat()}")


# Engines without release cycles to support or not: a managed service is kept current by its
# provider. The control does not apply to them.
_VERSIONLESS = (Engine.dynamodb,)


@register
class EngineSupported(Control):
    id = "lifecycle.engine_supported"
    family = "lifecycle"
    title = "Engine version still supported"
    description = (
        "The engine version is in a release cycle its vendor still ships security fixes for, "
        "according to the end-of-life table shipped with the inventory (its source and "
        "compilation date are in webapp/policy/data/engine_eol.json)."
    )
    severity = Severity.high
    parameters = (
        Parameter(
            name="fail_days_before_eol",
            type=int,
            default=0,
            minimum=0,
            maximum=730,
            unit="days",
            help="Start failing this many days before the vendor's end-of-life date, to leave "
            "time to upgrade (0: fail from the end-of-life date).",
        ),
    )
    references = MappingProxyType(
        {
            "soc2": ("CC7.1",),
            "gdpr": ("Art. 32(1)(b)",),
            "cis_controls": ("2.2",),
        }
    )

    def applies_to(self, asset: AssetFacts) -> bool:
        return in_scope(asset) and asset.engine not in _VERSIONLESS

    def check(self, asset: AssetFacts, context: Context) -> Result:
        engine = asset.engine.value
        version = (asset.engine_version or "").strip()
        if not version:
            return Result.unknown("engine version not known")
        if asset.engine is Engine.other:
            return Result.unknown("engine not known, so its vendor's support is not known")
        today = context.now.date()
        found = eol.lookup(engine, version, today)
        compiled = eol.table().compiled_at.isoformat()
        if found is None:
            return Result.unknown(f"no version number in {version!r}")
        if found.cycle is None:
            if found.candidates:
                if all(c.eol is not None and c.eol <= today for c in found.candidates):
                    last = max(c.eol for c in found.candidates if c.eol is not None)
                    return Result.failed(
                        f"every {engine} {found.version}.x release reached end of life, the last "
                        f"on {last.isoformat()}"
                    )
                names = ", ".join(c.cycle for c in reversed(found.candidates))
                return Result.unknown(
                    f"{engine} {found.version} could be any of {names}; give the minor version"
                )
            if found.older_than is not None:
                ended = found.older_than
                return Result.failed(
                    f"{engine} {found.version} is older than {ended.cycle}, which reached end of "
                    f"life on {ended.eol.isoformat() if ended.eol else '?'}"
                )
            return Result.unknown(
                f"{engine} {found.version} is not in the end-of-life table (compiled {compiled})"
            )
        cycle = found.cycle
        name = f"{engine} {cycle.cycle}"
        if cycle.eol is None:
            return Result.passed(
                f"{name} is supported; no end of life announced (as of {compiled})"
            )
        if cycle.eol <= today:
            return Result.failed(f"{name} reached end of life on {cycle.eol.isoformat()}")
        lead = context.parameters[self.id]["fail_days_before_eol"]
        if lead and today >= cycle.eol - timedelta(days=lead):
            left = (cycle.eol - today).days
            return Result.failed(
                f"{name} reaches end of life on {cycle.eol.isoformat()}, in "
                f"{plural(left, 'day')}; upgrades are due {plural(lead, 'day')} before"
            )
        return Result.passed(f"{name} is supported until {cycle.eol.isoformat()}")

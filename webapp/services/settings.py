"""Admin-edited settings with their defaults (SPEC §3, Setting)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from croniter import croniter
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp import policy
from webapp.models import AuditAction, Criticality, Environment, Setting
from webapp.models.base import utcnow
from webapp.services import audit
from webapp.services.actor import Actor
from webapp.services.errors import ValidationFailed

DEFAULTS: dict[str, Any] = {
    "stale_after_days": 30,
    "trash_retention_days": 30,
    "auto_merge_threshold": 0.90,
    "review_threshold": 0.60,
    # technical fields (engine, version, location, posture): cloud APIs > scanners > CMDB files
    "source_precedence": ["manual", "aws", "gcp", "azure", "nmap", "csv", "inventory"],
    # business fields (name, owner, criticality, classification, environment, status, notes):
    # people and CMDB files know them better than cloud tags
    "business_source_precedence": ["manual", "csv", "inventory", "aws", "gcp", "azure", "nmap"],
    # each policy control's parameters that differ from its defaults ({control: {name: value}},
    # SPEC §12); the defaults and ranges are the controls' own (webapp/policy/)
    "policy_parameters": {},
    # scheduled tasks' cron schedules that differ from their defaults ({task: "*/5 * * * *"},
    # SPEC §13); the tasks and their defaults are webapp/services/scheduled_tasks.py's
    "task_schedules": {},
    # which manual edits need a second person's approval (SPEC §5, proposals): edits to assets
    # whose environment is one of `environments` and criticality one of `criticalities`
    # (webapp/services/proposals.py); `enabled: false` turns approval off
    "approval_required": {"enabled": True, "environments": ["production"],
                          "criticalities": ["high", "critical"]},
}
PRECEDENCE_KEYS = ("source_precedence", "business_source_precedence")


def get(session: Session, key: str) -> Any:
    row = session.get(Setting, key)
    return row.value if row is not None else DEFAULTS[key]


def stale_cutoff(session: Session) -> datetime:
    """Active assets last seen before this moment are stale (`stale_after_days` ago)."""
    return utcnow() - timedelta(days=int(get(session, "stale_after_days")))


def all_settings(session: Session) -> dict[str, Any]:
    values = dict(DEFAULTS)
    for row in session.scalars(select(Setting).where(Setting.key.in_(DEFAULTS))):
        values[row.key] = row.value
    return values


def _validate(key: str, value: Any) -> Any:
    if key in {"stale_after_days", "trash_retention_days"}:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3650:
            raise ValidationFailed({key: "Enter a whole number of days between 1 and 3650."})
    elif key in {"auto_merge_threshold", "review_threshold"}:
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValidationFailed({key: "Enter a number between 0 and 1."})
        value = float(value)
    elif key in PRECEDENCE_KEYS:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValidationFailed({key: "Enter a list of source labels."})
        # manual is always highest
        value = ["manual", *[v for v in value if v != "manual"]]
    elif key == "policy_parameters":
        value = _policy_parameters(value)
    elif key == "task_schedules":
        value = _task_schedules(value)
    elif key == "approval_required":
        value = _approval_rule(value)
    else:
        raise ValidationFailed({key: "Unknown setting."})
    return value


def _policy_parameters(value: Any) -> dict[str, dict[str, Any]]:
    """Policy parameters checked against the controls: a 422 naming `<control>.<parameter>`
    for an unknown name or a value out of range (retention of -1 days)."""
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ValidationFailed({"policy_parameters": "Give each control's parameters as an object."})
    try:
        return policy.validate_parameters(value)
    except policy.ParameterError as exc:
        raise ValidationFailed({exc.field: str(exc)}, "A policy parameter is out of range.") from None


def cron_error(expression: Any) -> str | None:
    """Why `expression` is not a five-field cron schedule (minute hour day month weekday, UTC),
    or None when it is one."""
    if not isinstance(expression, str) or not expression.strip():
        return "Enter a cron schedule: minute hour day-of-month month day-of-week."
    if "\x00" in expression or len(expression) > 100 or len(expression.split()) != 5:
        return "A cron schedule has five fields: minute hour day-of-month month day-of-week."
    if not croniter.is_valid(expression.strip()):
        return f"{expression.strip()!r} is not a valid cron schedule."
    return None


def _task_schedules(value: Any) -> dict[str, str]:
    """{task: cron}: a 422 naming `task_schedules.<task>` for a schedule croniter refuses."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise ValidationFailed({"task_schedules": "Give each task's schedule as {task: cron}."})
    errors = {f"task_schedules.{name}": error for name, cron in value.items()
              if (error := cron_error(cron)) is not None}
    if errors:
        raise ValidationFailed(errors, "A task schedule is not a valid cron expression.")
    return {name: " ".join(cron.split()) for name, cron in sorted(value.items())}


def _approval_rule(value: Any) -> dict[str, Any]:
    """{"enabled": bool, "environments": [...], "criticalities": [...]}: known values only; on,
    it must name at least one environment and one criticality (else it would cover nothing)."""
    if not isinstance(value, dict) or set(value) - {"enabled", "environments", "criticalities"}:
        raise ValidationFailed({"approval_required": "Give enabled, environments and criticalities."})
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValidationFailed({"approval_required.enabled": "Enter true or false."})
    rule: dict[str, Any] = {"enabled": enabled}
    errors: dict[str, str] = {}
    for name, choices in (("environments", Environment), ("criticalities", Criticality)):
        given = value.get(name, [])
        allowed = [c.value for c in choices]
        if not isinstance(given, list) or not all(isinstance(v, str) and v in allowed for v in given):
            errors[f"approval_required.{name}"] = f"Choose among: {', '.join(allowed)}."
        elif enabled and not given:
            errors[f"approval_required.{name}"] = (
                f"Choose at least one, or turn approval off ({name} decide which assets it covers).")
        else:
            rule[name] = [v for v in allowed if v in given]  # in the enum's order, no repeats
    if errors:
        raise ValidationFailed(errors, "The approval rule is not valid.")
    return rule


def update(session: Session, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    """Change settings; one audited event lists every key that changed."""
    current = all_settings(session)
    cleaned = {key: _validate(key, value) for key, value in values.items()}
    if cleaned.get("review_threshold", current["review_threshold"]) > cleaned.get(
        "auto_merge_threshold", current["auto_merge_threshold"]
    ):
        raise ValidationFailed(
            {"review_threshold": "The review threshold cannot be above the auto-merge threshold."}
        )
    changes = {k: [current[k], v] for k, v in cleaned.items() if current[k] != v}
    for key in changes:
        row = session.get(Setting, key)
        if row is None:
            session.add(Setting(key=key, value=cleaned[key]))
        else:
            row.value = cleaned[key]
    if changes:
        audit.record(session, actor, AuditAction.settings_change, "setting", None, changes)
    session.commit()
    return changes

"""Policy exceptions (SPEC §12): a reviewer or admin lets one asset fail one control, for a
reason, until a date (at most a year away). The result reads `excepted` until then, and fails
again once it passes (the policy job re-evaluates expired exceptions).

    grant(session, actor, asset_id, "encryption.at_rest", reason="…", expires_at=when)
    active(session, asset_id)          # {control id: PolicyException}
    expire(session, now=now)           # re-evaluate the assets whose exceptions ran out (and
                                       # announce them, and those ending within a week)
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from webapp import policy
from webapp.models import Asset, AuditAction, EventSeverity, PolicyException, Role
from webapp.models.base import utcnow
from webapp.services import assets, audit, outbox, policy_results
from webapp.services.actor import Actor
from webapp.services.errors import ValidationFailed

WARN_DAYS = 7  # an exception ending this soon is announced (once)
MAX_DAYS = 366  # "at most a year": a year from today, leap day included
REASON_MAX = 2_000


def grant(session: Session, actor: Actor, asset_id: uuid.UUID | str, control_id: str, *,
          reason: str, expires_at: datetime | None, now: datetime | None = None) -> PolicyException:
    """Grant an exception; audited (`exception_grant`) and the asset re-evaluated in the same
    transaction. ValidationFailed (422) names what is wrong: an unknown control, one that does
    not apply to the asset, no reason, an expiry in the past or more than a year away."""
    now = now or utcnow()
    asset = assets.get(session, asset_id, include_deleted=False)
    errors: dict[str, str] = {}
    control = policy.CONTROLS.get(control_id or "")
    if control is None:
        errors["control"] = "Choose one of the policy controls."
    elif not control.applies_to(policy.AssetFacts.from_asset(asset)):
        errors["control"] = f"“{control.title}” does not apply to this asset, so it needs no exception."
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = "Say why this asset may fail the control."
    elif len(reason) > REASON_MAX or "\x00" in reason:
        errors["reason"] = f"Keep the reason under {REASON_MAX:,} characters of plain text."
    if expires_at is None:
        errors["expires_at"] = "Choose when the exception ends (at most a year from now)."
    elif expires_at.tzinfo is None:
        errors["expires_at"] = "Give the expiry with a time zone (UTC)."
    elif expires_at <= now:
        errors["expires_at"] = "The expiry must be in the future."
    elif expires_at > now + timedelta(days=MAX_DAYS):
        errors["expires_at"] = "An exception lasts at most a year; choose an earlier expiry."
    if errors:
        raise ValidationFailed(errors, "The exception cannot be granted.")
    assert control is not None and expires_at is not None
    exception = PolicyException(
        id=uuid.uuid4(), asset_id=asset.id, control_id=control.id, reason=reason,
        expires_at=expires_at, granted_by=actor.user_id, granted_by_label=actor.label, granted_at=now,
    )
    session.add(exception)
    audit.record(
        session, actor, AuditAction.exception_grant, "asset", asset.id,
        changes={"exception": [None, {"control": control.id, "reason": reason,
                                      "expires_at": expires_at.isoformat()}]},
        message=f"exception to “{control.title}” until {expires_at:%Y-%m-%d}",
    )
    policy_results.touch(session, [asset.id])
    session.commit()
    return exception


def active(session: Session, asset_id: uuid.UUID, *, now: datetime | None = None) -> dict[str, PolicyException]:
    """The asset's live exceptions by control (the latest expiry when there are several)."""
    found: dict[str, PolicyException] = {}
    for exception in session.scalars(
        select(PolicyException)
        .where(PolicyException.asset_id == asset_id, PolicyException.expires_at > (now or utcnow()))
        .order_by(PolicyException.expires_at)
    ):
        found[exception.control_id] = exception
    return found


def expire(session: Session, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Re-evaluate the assets whose exceptions have run out since last time, mark those
    exceptions handled and announce each (an `exception_expiring` outbox event), in one
    transaction; announce, once each, the exceptions ending within WARN_DAYS. Returns what
    expired."""
    now = now or utcnow()
    _warn_soon(session, now)
    due = list(session.execute(
        select(PolicyException.id, PolicyException.asset_id, PolicyException.control_id,
               PolicyException.expires_at, Asset.name)
        .join(Asset, Asset.id == PolicyException.asset_id)
        .where(PolicyException.expires_at <= now, PolicyException.expiry_handled_at.is_(None))
    ).tuples())
    if not due:
        session.commit()
        return []
    session.execute(update(PolicyException).where(PolicyException.id.in_([d[0] for d in due]))
                    .values(expiry_handled_at=now).execution_options(synchronize_session=False))
    policy_results.evaluate_ids(session, {d[1] for d in due}, now=now)
    for exception_id, asset_id, control_id, expires_at, name in due:
        _announce(session, "expired", exception_id, asset_id, control_id, expires_at, name)
    session.commit()
    return [{"exception_id": str(i), "asset_id": str(a), "control": c, "expired_at": e.isoformat()}
            for i, a, c, e, _name in due]


def _warn_soon(session: Session, now: datetime) -> None:
    """One event per exception ending within WARN_DAYS (the dedupe key keeps it to one)."""
    for exception_id, asset_id, control_id, expires_at, name in session.execute(
        select(PolicyException.id, PolicyException.asset_id, PolicyException.control_id,
               PolicyException.expires_at, Asset.name)
        .join(Asset, Asset.id == PolicyException.asset_id)
        .where(PolicyException.expires_at > now,
               PolicyException.expires_at <= now + timedelta(days=WARN_DAYS),
               Asset.deleted_at.is_(None))
    ).tuples():
        _announce(session, "expiring", exception_id, asset_id, control_id, expires_at, name)


def _announce(session: Session, what: str, exception_id: uuid.UUID, asset_id: uuid.UUID,
              control_id: str, expires_at: datetime, name: str) -> None:
    control = policy.CONTROLS.get(control_id)
    title = control.title if control else control_id
    subject = (f"The exception to “{title}” for {name} ended on {expires_at:%Y-%m-%d}"
               if what == "expired" else
               f"The exception to “{title}” for {name} ends on {expires_at:%Y-%m-%d}")
    outbox.emit(
        session, "exception_expiring", subject=subject, min_role=Role.reviewer,
        severity=EventSeverity.medium if what == "expired" else EventSeverity.low,
        body=("The asset is evaluated against the control again." if what == "expired" else
              "Renew it, or fix the asset, before then."),
        link=f"/assets/{asset_id}/policy", dedupe_key=f"exception_{what}:{exception_id}",
        payload={"exception_id": str(exception_id), "asset_id": str(asset_id), "asset": name,
                 "control": control_id, "expires_at": expires_at.isoformat(), "state": what},
    )

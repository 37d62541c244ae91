"""Four-eyes approval of manual edits (SPEC §5 Review, `approval_required` in §3).

A person's edit (the form, the API, a bulk action, a tag, a revert) to an asset the
`approval_required` setting covers is not applied: it is saved as a `Proposal`, a diff against
the version it was made on, audited `propose`. Another person with the reviewer role (or an
admin) approves it, which applies it as one change through `assets.update` (audited `approve`,
naming the proposer and the approver) if the asset is still at that version, or rejects it with
a reason (`reject`). Nobody approves their own proposal.

    result = submit(session, actor, asset_id, {"owner": "dba"}, expected_version=3)
    if isinstance(result, Proposal): ...          # held for approval; the asset is unchanged
    approve(session, reviewer_actor, result.id)   # applied: the asset is at version 4
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from webapp.models import Asset, AuditAction, Proposal, ProposalStatus, Role, User
from webapp.models.base import utcnow
from webapp.services import assets, audit, bulk, crypto, settings
from webapp.services.actor import Actor
from webapp.services.change_set_batches import BatchResult, Verdict, load_states
from webapp.services.errors import Forbidden, InvalidState, NotFound, StaleVersion, ValidationFailed
from webapp.services.text import UNSTORABLE

ENTITY = "proposal"
REASON_MAX = 2000
# the secret never waits in a proposal: it would sit outside the encrypted column, and an
# approver could not see what they approve (docs/decisions.md)
UNPROPOSED = frozenset({"connection_string"})
STATUS_LABELS = {ProposalStatus.open: "waiting for approval", ProposalStatus.approved: "approved",
                 ProposalStatus.rejected: "rejected"}


# --- what approval covers ---------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """The `approval_required` setting: edits to assets in one of `environments` with one of
    `criticalities` need approval, while `enabled`."""

    enabled: bool
    environments: frozenset[str]
    criticalities: frozenset[str]

    @classmethod
    def of(cls, value: Mapping[str, Any]) -> Rule:
        return cls(bool(value.get("enabled", True)), frozenset(value.get("environments") or ()),
                   frozenset(value.get("criticalities") or ()))

    def matches(self, environment: Any, criticality: Any) -> bool:
        return (self.enabled and _text(environment) in self.environments
                and _text(criticality) in self.criticalities)

    def covers(self, before: tuple[Any, Any], after: tuple[Any, Any]) -> bool:
        """An edit needs approval when the asset is covered before it OR would be after it:
        demoting production to staging, or raising criticality into the covered set, are the
        edits four eyes are for (docs/decisions.md)."""
        return self.matches(*before) or self.matches(*after)

    def describe(self) -> str:
        if not self.enabled:
            return "off: every edit applies at once"
        return (f"edits to {' or '.join(sorted(self.environments))} assets of criticality "
                f"{' or '.join(sorted(self.criticalities))}")


def _text(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def rule(session: Session) -> Rule:
    return Rule.of(settings.get(session, "approval_required"))


def covered_condition(session: Session, set_values: Mapping[str, Any]) -> ColumnElement[bool]:
    """SQL: an asset that an edit setting `set_values` would need approval for (a bulk
    action's preview counts these)."""
    current = rule(session)
    if not current.enabled:
        return false()

    def member(field: str, allowed: frozenset[str]) -> ColumnElement[bool]:
        column = getattr(Asset, field)
        if field in set_values:  # the value after the edit is the same for every asset
            return true() if _text(set_values[field]) in allowed else false()
        return column.in_(sorted(allowed))

    before = and_(Asset.environment.in_(sorted(current.environments)),
                  Asset.criticality.in_(sorted(current.criticalities)))
    after = and_(member("environment", current.environments), member("criticality", current.criticalities))
    return or_(before, after)


# --- proposing --------------------------------------------------------------------------------

def submit(
    session: Session,
    actor: Actor,
    asset_id: uuid.UUID | str,
    data: dict[str, Any],
    *,
    expected_version: int | None,
    action: AuditAction = AuditAction.update,
    message: str | None = None,
) -> Asset | Proposal:
    """A person's edit: applied (`assets.update`) when approval does not cover it, else saved
    as a proposal (the asset is unchanged; a new connection string is still saved at once).
    Returns the asset or the proposal. StaleVersion as `assets.update`."""
    asset = assets.get(session, asset_id)
    if asset.deleted_at is not None:
        raise InvalidState("This asset is in the trash. Restore it before editing.")
    if expected_version is not None and asset.version != expected_version:
        raise StaleVersion(asset)
    cleaned = assets.validate(data, partial=True)
    after = (cleaned.get("environment", asset.environment), cleaned.get("criticality", asset.criticality))
    if not rule(session).covers((asset.environment, asset.criticality), after):
        return assets.update(session, actor, asset.id, data, expected_version=expected_version,
                             action=action, message=message)
    secret = {f: cleaned.pop(f) for f in UNPROPOSED if f in cleaned}
    if secret and _secret_changes(session, asset, secret):
        assets.update(session, actor, asset.id, secret, expected_version=None, commit=False)
    diff = _diff(asset, cleaned)
    if not diff:
        assets.commit_change(session)
        return asset
    proposal = _new(session, actor, asset, diff, message=message)
    assets.commit_change(session)
    return proposal


def revert(session: Session, actor: Actor, asset_id: uuid.UUID | str, to_version: int, *,
           expected_version: int | None) -> Asset | Proposal:
    """`assets.revert` as a person's edit: held for approval when approval covers it."""
    asset = assets.get(session, asset_id)
    then = assets.state_at(session, asset, to_version)
    data = {f: then.get(f) for f in assets.FIELDS if f not in assets.UNREVERTABLE}
    return submit(session, actor, asset.id, data, expected_version=expected_version,
                  action=AuditAction.revert, message=f"reverted to version {to_version}")


def add_tag(session: Session, actor: Actor, asset_id: uuid.UUID | str, name: str) -> Asset | Proposal:
    """`assets.add_tag` as a person's edit (held for approval when approval covers it)."""
    asset = assets.get(session, asset_id)
    try:
        new = assets._tags([name])
    except ValueError as exc:
        raise ValidationFailed({"tag": str(exc)}) from None
    if not new:
        raise ValidationFailed({"tag": "Enter a tag name."})
    names = [t.name for t in asset.tags]
    return submit(session, actor, asset.id, {"tags": [*names, *new]}, expected_version=None)


def remove_tag(session: Session, actor: Actor, asset_id: uuid.UUID | str, name: str) -> Asset | Proposal:
    """`assets.remove_tag` as a person's edit (held for approval when approval covers it)."""
    asset = assets.get(session, asset_id)
    names = [t.name for t in asset.tags]
    name = name.strip().lower()  # tags are stored in lower case, as adding one stores it
    if name not in names:
        raise NotFound("This asset has no such tag.")
    return submit(session, actor, asset.id, {"tags": [n for n in names if n != name]}, expected_version=None)


def _secret_changes(session: Session, asset: Asset, secret: dict[str, Any]) -> bool:
    token = asset.connection_string_encrypted
    return (crypto.decrypt(session, token) if token else None) != secret.get("connection_string")


def _diff(asset: Asset, cleaned: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{field: [current, proposed]} of the fields the edit really changes, as JSON values."""
    return _diff_of({field: assets.field_value(asset, field) for field in cleaned}, cleaned)


def _diff_of(current: Mapping[str, Any], cleaned: Mapping[str, Any]) -> dict[str, list[Any]]:
    """`_diff` against the fields' current values (`current`: {field: value})."""
    diff: dict[str, list[Any]] = {}
    for field, new in cleaned.items():
        old = audit.jsonable(current[field])
        if old != audit.jsonable(new):
            diff[field] = [old, audit.jsonable(new)]
    return diff


def _new(session: Session, actor: Actor, asset: Asset, diff: dict[str, list[Any]], *,
         message: str | None = None, change_set_id: uuid.UUID | None = None) -> Proposal:
    proposal = Proposal(id=uuid.uuid4(), asset_id=asset.id, base_version=asset.version, changes=diff,
                        status=ProposalStatus.open, proposed_by=actor.user_id,
                        proposed_by_label=actor.label[:300], change_set_id=change_set_id,
                        created_at=utcnow())
    session.add(proposal)
    audit.record(session, actor, AuditAction.propose, ENTITY, proposal.id,
                 {**diff, **_about(asset, proposal)},
                 message=_proposed_message(asset, proposal, message), change_set_id=change_set_id)
    return proposal


def _about(asset: Asset | None, proposal: Proposal) -> dict[str, list[Any]]:
    """What a proposal's audit events carry beside the diff: its asset and base version."""
    return {"asset_id": [None, str(proposal.asset_id)], "base_version": [None, proposal.base_version]}


def _proposed_message(asset: Asset | str, proposal: Proposal, why: str | None = None) -> str:
    """`asset`: the asset, or its name."""
    name = asset if isinstance(asset, str) else asset.name
    text = f"proposed a change to “{name}” (version {proposal.base_version}), waiting for approval"
    return f"{text}; {why}" if why else text


# --- deciding ---------------------------------------------------------------------------------

def get(session: Session, proposal_id: uuid.UUID | str, *, for_update: bool = False) -> Proposal:
    try:
        key = proposal_id if isinstance(proposal_id, uuid.UUID) else uuid.UUID(str(proposal_id))
    except ValueError:
        raise NotFound("No such proposed change.") from None
    proposal = session.get(Proposal, key, with_for_update=for_update or None)
    if proposal is None:
        raise NotFound("No such proposed change.")
    return proposal


def _reviewer(session: Session, actor: Actor, what: str) -> User:
    user = session.get(User, actor.user_id) if actor.user_id else None
    if user is None or not user.role.at_least(Role.reviewer):
        raise Forbidden(f"{what} a proposed change needs the reviewer role or higher.")
    return user


def _open(session: Session, proposal_id: uuid.UUID | str) -> Proposal:
    proposal = get(session, proposal_id, for_update=True)
    if not proposal.is_open:
        raise InvalidState(f"This change was {proposal.status.value} already "
                           f"by {proposal.decided_by_label or 'someone else'}.")
    return proposal


def is_stale(asset: Asset, proposal: Proposal) -> bool:
    return asset.version != proposal.base_version or asset.deleted_at is not None


def stale_message(asset: Asset, proposal: Proposal) -> str:
    if asset.deleted_at is not None:
        return "The asset is in the trash: this change cannot be applied. Reject it."
    return (f"The asset changed since this change was proposed (version {proposal.base_version} "
            f"then, version {asset.version} now): approving it could undo those changes. "
            "Rebase it onto the current version to review it again, or reject it.")


def approve(session: Session, actor: Actor, proposal_id: uuid.UUID | str) -> Proposal:
    """Apply an open proposal as one change, audited `approve` with both people. Forbidden for
    the proposer and below the reviewer role; InvalidState when it is decided already or stale
    (the asset's version moved on since it was proposed)."""
    _reviewer(session, actor, "Approving")
    proposal = _open(session, proposal_id)
    if actor.user_id is not None and actor.user_id == proposal.proposed_by:
        raise Forbidden("You proposed this change: another reviewer must approve it.")
    asset = assets.get(session, proposal.asset_id)
    if is_stale(asset, proposal):
        raise InvalidState(stale_message(asset, proposal))
    data = {field: pair[1] for field, pair in proposal.changes.items()}
    message = (f"approved proposal {proposal.id}: proposed by {proposal.proposed_by_label}, "
               f"approved by {actor.label}")
    try:
        assets.update(session, actor, asset.id, data, expected_version=proposal.base_version,
                      action=AuditAction.approve, message=message, commit=False)
    except StaleVersion as exc:  # changed between the check and the write
        raise InvalidState(stale_message(exc.current, proposal)) from None
    if asset.version == proposal.base_version:  # nothing left to change: still on the record
        audit.record(session, actor, AuditAction.approve, assets.ENTITY, asset.id, {}, message=message)
    _decide(proposal, actor, ProposalStatus.approved)
    proposal.applied_version = asset.version
    assets.commit_change(session)
    return proposal


def reject(session: Session, actor: Actor, proposal_id: uuid.UUID | str, reason: str | None) -> Proposal:
    """Drop an open proposal with a reason (required), audited `reject`. A reviewer may
    reject (withdraw) their own."""
    _reviewer(session, actor, "Rejecting")
    text = (reason or "").strip()
    if not text:
        raise ValidationFailed({"reason": "Say why the change is rejected."})
    if len(text) > REASON_MAX or UNSTORABLE.search(text):
        raise ValidationFailed({"reason": f"Use at most {REASON_MAX:,} characters of plain text."})
    proposal = _open(session, proposal_id)
    _decide(proposal, actor, ProposalStatus.rejected)
    proposal.reason = text
    asset = session.get(Asset, proposal.asset_id)
    audit.record(session, actor, AuditAction.reject, ENTITY, proposal.id, _about(asset, proposal),
                 message=f"rejected the change {proposal.proposed_by_label} proposed to "
                         f"“{asset.name if asset else proposal.asset_id}”: {text}")
    session.commit()
    return proposal


def rebase(session: Session, actor: Actor, proposal_id: uuid.UUID | str) -> Proposal:
    """Move a stale proposal onto the asset's current version: each field's "before" becomes
    its value now, fields it would no longer change drop out (audited `propose`). The proposer
    or a reviewer may; the proposer stays the proposer."""
    proposal = _open(session, proposal_id)
    if actor.user_id != proposal.proposed_by:
        _reviewer(session, actor, "Rebasing")
    asset = assets.get(session, proposal.asset_id)
    if asset.deleted_at is not None:
        raise InvalidState(stale_message(asset, proposal))
    if asset.version == proposal.base_version:
        raise InvalidState("This change is already based on the asset's current version.")
    diff = _diff(asset, assets.validate({f: p[1] for f, p in proposal.changes.items()}, partial=True))
    if not diff:
        raise InvalidState("The asset already has every value this change proposes: reject it.")
    before = proposal.base_version
    proposal.base_version, proposal.changes = asset.version, diff
    audit.record(session, actor, AuditAction.propose, ENTITY, proposal.id,
                 {**diff, "base_version": [before, asset.version], "asset_id": [None, str(asset.id)]},
                 message=f"rebased the change {proposal.proposed_by_label} proposed to "
                         f"“{asset.name}” from version {before} onto version {asset.version}")
    session.commit()
    return proposal


def _decide(proposal: Proposal, actor: Actor, status: ProposalStatus) -> None:
    proposal.status = status
    proposal.decided_by, proposal.decided_by_label = actor.user_id, actor.label[:300]
    proposal.decided_at = utcnow()


# --- bulk actions -----------------------------------------------------------------------------

def hold_for_approval(
    session: Session, actor: Actor, change_set_id: uuid.UUID, items: Iterable[tuple[uuid.UUID, int]],
    action: Any,  # a bulk_actions.BulkAction (not imported: bulk_actions imports this module)
) -> tuple[set[uuid.UUID], BatchResult]:
    """The assets of a bulk action's batch that approval covers: for each, a proposal (one per
    asset, carrying the change set's id) instead of the change. Returns their ids (the batch
    leaves them out) and their counts (`locked`: held for approval). Moving to the trash is
    not held (docs/decisions.md).

    The proposals are written as a person's are (`_new`: the row, and its `propose` event in
    the chain), but all of the batch's at once: one bulk insert of the rows and one
    `audit.record_many` of their events. One ORM add and one `audit.record` each cost five
    statements per asset (flush, lock, last hash, insert, anchor): 10,000 covered assets of a
    100,000-asset change set took longer than changing the other 90,000."""
    result = BatchResult()
    versions = dict(items)
    if action.delete or not versions or not rule(session).enabled:
        return set(), result
    # the batch's covered assets as the batch reads its own (a Core read, tags included)
    covered = load_states(session, list(versions), list(action.set), Asset.deleted_at.is_(None),
                          covered_condition(session, action.set))
    now = utcnow()
    rows: list[dict[str, Any]] = []
    events: list[audit.Entry] = []
    for asset_id in sorted(covered):
        state = covered[asset_id]
        if state["version"] != versions[asset_id]:
            result.report("refused", asset_id, state["name"],
                          f"changed since the preview (version {versions[asset_id]}, now {state['version']})")
            continue
        wanted = action.plan(state)
        if isinstance(wanted, Verdict):
            result.report(wanted.outcome, asset_id, state["name"], wanted.reason)
            continue
        diff = _diff_of(state, wanted.values)
        if not diff:
            result.report("unchanged", asset_id, state["name"], None)
            continue
        row = {"id": uuid.uuid4(), "asset_id": asset_id, "base_version": state["version"], "changes": diff,
               "status": ProposalStatus.open, "proposed_by": actor.user_id,
               "proposed_by_label": actor.label[:300], "change_set_id": change_set_id, "created_at": now}
        rows.append(row)
        proposal = Proposal(**row)  # never added: what its event says is said as `_new` says it
        events.append(audit.Entry(AuditAction.propose, ENTITY, proposal.id,
                                  {**diff, **_about(None, proposal)},
                                  message=_proposed_message(state["name"], proposal)))
        result.report("locked", asset_id, state["name"], f"needs approval: saved as a proposed change ({proposal.id})")
    bulk.insert_rows(session, Proposal.__table__, rows)  # COPY on PostgreSQL
    audit.record_many(session, actor, events, change_set_id=change_set_id)
    return set(covered), result


# --- reading ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProposalRow:
    proposal: Proposal
    asset_name: str | None
    asset_version: int | None

    @property
    def stale(self) -> bool:
        return self.proposal.is_open and self.asset_version != self.proposal.base_version


def list_proposals(session: Session, *, status: ProposalStatus | None = ProposalStatus.open,
                   asset_id: uuid.UUID | None = None, limit: int = 50) -> list[ProposalRow]:
    """Proposals, newest first, with their asset's name and version (one query)."""
    stmt = (select(Proposal, Asset.name, Asset.version).outerjoin(Asset, Asset.id == Proposal.asset_id)
            .order_by(Proposal.created_at.desc(), Proposal.id.desc()).limit(limit))
    if status is not None:
        stmt = stmt.where(Proposal.status == status)
    if asset_id is not None:
        stmt = stmt.where(Proposal.asset_id == asset_id)
    return [ProposalRow(p, name, version) for p, name, version in session.execute(stmt)]


def current_values(asset: Asset, fields: Iterable[str]) -> dict[str, Any]:
    """The asset's values now of `fields`, as JSON values (a stale proposal's "Now" column)."""
    return {f: audit.jsonable(assets.field_value(asset, f)) for f in fields if f in assets.FIELDS}


def open_count(session: Session, asset_id: uuid.UUID | None = None) -> int:
    """Proposals waiting for approval (of one asset, or all)."""
    stmt = select(func.count()).select_from(Proposal).where(Proposal.status == ProposalStatus.open)
    if asset_id is not None:
        stmt = stmt.where(Proposal.asset_id == asset_id)
    return session.scalar(stmt) or 0


def may_decide(user: Any, proposal: Proposal) -> bool:
    """Whether `user` may approve this proposal (the buttons; the service checks again)."""
    return (proposal.is_open and getattr(user, "role", None) is not None
            and Role(user.role).at_least(Role.reviewer) and user.id != proposal.proposed_by)

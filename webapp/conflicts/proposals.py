"""Proposed changes in the review queue (SPEC §5): the list (`/conflicts?kind=proposal`), one
proposal shown as a diff, and `Approve`, `Reject` (with a reason) and `Rebase` (a stale one)."""

from __future__ import annotations

import uuid

from flask import flash, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from webapp.conflicts import bp
from webapp.extensions import db
from webapp.models import Asset, ProposalStatus, Role
from webapp.services import proposals
from webapp.services.errors import DomainError, ValidationFailed
from webapp.web.htmx import render
from webapp.web.session import current_actor, role_required

KIND = "proposal"  # the queue's kind filter value for proposed changes
STATUSES = [*(s.value for s in ProposalStatus), "any"]


def queue() -> Response:
    """`/conflicts?kind=proposal`: proposed changes, newest first (`status`, `asset`)."""
    status_text = request.args.get("status", ProposalStatus.open.value)
    errors: dict[str, str] = {}
    if status_text not in STATUSES:
        errors["status"] = f"Choose {', '.join(STATUSES)}."
    asset_id = None
    if request.args.get("asset"):
        try:
            asset_id = uuid.UUID(request.args["asset"])
        except ValueError:
            errors["asset"] = "Not an asset id."
    rows = [] if errors else proposals.list_proposals(
        db.session, status=None if status_text == "any" else ProposalStatus(status_text),
        asset_id=asset_id, limit=200)
    return render("conflicts/proposals.html", "queue", status=422 if errors else 200, rows=rows,
                  errors=errors, status_text=status_text, statuses=STATUSES, asset_id=asset_id)


@bp.route("/conflicts/proposals/<proposal_id>")
@role_required(Role.viewer)
def proposal(proposal_id: str) -> Response:
    return _detail(proposal_id)


def _detail(proposal_id: str, *, status: int = 200, error: str | None = None,
            reason: str = "") -> Response:
    item = proposals.get(db.session, proposal_id)
    asset = db.session.get(Asset, item.asset_id)
    stale = item.is_open and asset is not None and proposals.is_stale(asset, item)
    now = proposals.current_values(asset, item.changes) if stale and asset is not None else {}
    return render("conflicts/proposal.html", "detail", status=status, p=item, asset=asset,
                  stale=stale, now=now, stale_message=proposals.stale_message(asset, item) if stale else None,
                  own=current_user.id == item.proposed_by,
                  may_approve=proposals.may_decide(current_user, item) and not stale,
                  error=error, reason=reason, status_label=proposals.STATUS_LABELS[item.status])


@bp.route("/conflicts/proposals/<proposal_id>/<decision>", methods=["POST"])
@role_required(Role.reviewer)
def decide(proposal_id: str, decision: str) -> Response:
    """Approve, reject (with `reason`) or rebase. A refusal shows the proposal again with why:
    403 for one's own (or too low a role), 409 when stale or decided already, 422 no reason."""
    reason = request.form.get("reason", "")
    try:
        if decision == "approve":
            done = proposals.approve(db.session, current_actor(), proposal_id)
            flash(f"Approved: the change is applied (now version {done.applied_version}).", "success")
        elif decision == "reject":
            done = proposals.reject(db.session, current_actor(), proposal_id, reason)
            flash("Rejected: the asset stays as it is.", "success")
        elif decision == "rebase":
            done = proposals.rebase(db.session, current_actor(), proposal_id)
            flash(f"Rebased onto version {done.base_version}: review the change again.", "success")
        else:
            raise ValidationFailed({"decision": "Choose approve, reject or rebase."})
    except DomainError as exc:
        db.session.rollback()
        detail = exc.message
        if isinstance(exc, ValidationFailed):
            detail = "; ".join(exc.errors.values())
        return _detail(proposal_id, status=exc.status, error=detail, reason=reason)
    target = url_for("conflicts.proposal", proposal_id=done.id)
    if decision != "rebase":
        target = url_for("conflicts.index", kind=KIND)
    return redirect(target, 303)

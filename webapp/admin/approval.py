"""Settings: which manual edits need a second person's approval (`approval_required`, SPEC §3
and §5), on the settings page; saved through `services.settings` (audited `settings_change`)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from webapp.admin import bp
from webapp.extensions import db
from webapp.models import Criticality, Environment, Role
from webapp.services import proposals
from webapp.services import settings as settings_service
from webapp.services.errors import ValidationFailed
from webapp.web.session import current_actor, role_required


@bp.context_processor
def approval_settings() -> dict[str, Any]:
    return {"approval_form": approval_form}


def approval_form(posted: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the settings page's approval section shows: the rule (as saved, or as posted)."""
    value = posted or settings_service.get(db.session, "approval_required")
    return {"rule": value, "described": proposals.Rule.of(value).describe(),
            "environments": [e.value for e in Environment],
            "criticalities": [c.value for c in Criticality]}


@bp.route("/settings/approval", methods=["POST"])
@role_required(Role.admin)
def approval() -> Response:
    """Save the approval rule (turned off with `enabled` unchecked). A bad rule: back to the
    settings page with the reason (the rule is left as it was)."""
    rule = {"enabled": request.form.get("enabled") == "on",
            "environments": request.form.getlist("environments"),
            "criticalities": request.form.getlist("criticalities")}
    try:
        changed = settings_service.update(db.session, current_actor(), {"approval_required": rule})
    except ValidationFailed as exc:
        db.session.rollback()
        for message in exc.errors.values():
            flash(f"Approval rule not saved: {message}", "error")
        return redirect(url_for("admin.settings") + "#approval", 303)
    flash("Approval rule saved." if changed else "Approval rule unchanged.", "success")
    return redirect(url_for("admin.settings") + "#approval", 303)

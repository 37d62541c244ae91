"""The global audit log and chain verification."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from webapp.audit import bp
from webapp.extensions import db
from webapp.models import AuditAction, Role
from webapp.services import audit, audit_log
from webapp.services.errors import ValidationFailed
from webapp.web.htmx import is_partial, render
from webapp.web.session import role_required


@bp.route("/audit")
@role_required(Role.viewer)
def index() -> Response:
    args = {k: v for k, v in request.args.items() if v}
    errors: dict[str, str] = {}
    try:
        query = audit_log.parse_query(args)
    except ValidationFailed as exc:
        query, errors = audit_log.AuditQuery(), exc.errors
    events, before = audit_log.events(db.session, query)
    return render(
        "audit/index.html", "results", status=422 if errors else 200, events=events,
        names=audit_log.entity_names(db.session, events),
        before=before, query=query, errors=errors, actions=[a.value for a in AuditAction],
    )


@bp.route("/audit/verify", methods=["POST"])
@role_required(Role.viewer)
def verify() -> Response:
    result = audit.verify(db.session)
    if is_partial():
        return render("audit/index.html", "verify", result=result)
    if result.ok:
        flash(f"Chain intact: {result.checked} events verified.", "success")
    else:
        flash(f"Chain broken at event {result.first_broken_id}: {result.reason}", "error")
    return redirect(url_for("audit.index"), 303)

"""Policy pages (SPEC §12): `/policy` (frameworks, then their controls, each count a link to the
assets behind it), a framework's compliance report (printable page and CSV), and an asset's
Policy tab with its exceptions."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from jinja2_fragments.flask import render_block
from werkzeug.wrappers import Response

from webapp.compliance import bp
from webapp.compliance.forms import ExceptionForm
from webapp.extensions import db
from webapp.models import Role
from webapp.models.base import utcnow
from webapp.services import assets as asset_service
from webapp.services import policy_exceptions, policy_reports, policy_runs
from webapp.services.errors import ValidationFailed
from webapp.web.downloads import attachment
from webapp.web.forms import apply_errors
from webapp.web.htmx import render
from webapp.web.session import current_actor, role_required


@bp.route("/policy")
@role_required(Role.viewer)
def index() -> Response:
    counts = policy_reports.cached_control_counts(db.session)
    return render("compliance/index.html", "content",
                  frameworks=policy_reports.frameworks(db.session, counts),
                  most_failed=policy_reports.most_failed(counts),
                  run=policy_runs.latest(db.session))


@bp.route("/policy/run")
@role_required(Role.viewer)
def run_progress() -> Response:
    """The latest re-evaluation's progress (polled by /policy while it runs)."""
    return render_block("compliance/index.html", "run", run=policy_runs.latest(db.session))


@bp.route("/policy/frameworks/<framework_id>/report")
@role_required(Role.viewer)
def report(framework_id: str) -> Response:
    framework = policy_reports.get_framework(framework_id)
    summary = next(f for f in policy_reports.frameworks(db.session) if f.framework.id == framework.id)
    rows = {c.control.id: list(policy_reports.report_rows(
        db.session, c.control.id, limit=policy_reports.REPORT_ASSETS_SHOWN)) for c in summary.controls}
    return render("compliance/report.html", None, summary=summary, rows=rows,
                  shown=policy_reports.REPORT_ASSETS_SHOWN, generated_at=utcnow())


@bp.route("/policy/frameworks/<framework_id>/report.csv")
@role_required(Role.viewer)
def report_csv(framework_id: str) -> Response:
    framework = policy_reports.get_framework(framework_id)
    return attachment(policy_reports.report_csv(db.session, framework.id), "text/csv",
                       f"compliance-{framework.id}.csv")


@bp.route("/assets/<asset_id>/policy")
@role_required(Role.viewer)
def asset_tab(asset_id: str) -> Response:
    asset = asset_service.get(db.session, asset_id)
    return _tab(asset, ExceptionForm(formdata=None))


@bp.route("/assets/<asset_id>/policy/exceptions", methods=["POST"])
@role_required(Role.reviewer)
def grant(asset_id: str) -> Response:
    asset = asset_service.get(db.session, asset_id)
    form = ExceptionForm()
    if form.validate_on_submit():
        try:
            exception = policy_exceptions.grant(
                db.session, current_actor(), asset.id, form.control.data or "",
                reason=form.reason.data or "", expires_at=form.expires_at())
        except ValidationFailed as exc:
            db.session.rollback()
            on_form = {("expires_on" if k == "expires_at" else k): v for k, v in exc.errors.items()}
            apply_errors(form, ValidationFailed(on_form, str(exc)))
            return _tab(asset, form, status=422, errors=on_form)
        flash(f"Exception granted until {exception.expires_at:%Y-%m-%d}.", "success")
        return redirect(url_for("compliance.asset_tab", asset_id=asset.id), 303)
    return _tab(asset, form, status=422, errors={"expires_on": "Enter the last day as YYYY-MM-DD."})


def _tab(asset, form: ExceptionForm, *, status: int = 200, errors: dict | None = None) -> Response:  # type: ignore[no-untyped-def,type-arg]
    return render("compliance/asset.html", "content", status=status, asset=asset, tab="policy",
                  report=policy_reports.asset_policy(db.session, asset), form=form,
                  errors=errors or {}, chosen=request.form.get("control") if errors else None)

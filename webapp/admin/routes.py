"""User management and settings (admin only)."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from webapp import jobs
from webapp.admin import bp
from webapp.admin.forms import (
    ResetPasswordForm,
    SettingsForm,
    UserEditForm,
    UserForm,
    UserRoleForm,
)
from webapp.extensions import db
from webapp.models import Role, User
from webapp.models.base import utcnow
from webapp.services import auth as auth_service
from webapp.services import policy_reports, policy_runs
from webapp.services import settings as settings_service
from webapp.services.errors import ValidationFailed
from webapp.web.forms import apply_errors
from webapp.web.htmx import render
from webapp.web.session import current_actor, role_required


@bp.route("/users", methods=["GET", "POST"])
@role_required(Role.admin)
def users() -> Response:
    form = UserForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = auth_service.create_user(
                db.session, current_actor(), email=form.email.data, password=form.password.data,
                role=form.role.data, name=form.name.data or "",
            )
        except ValidationFailed as exc:
            apply_errors(form, exc)
            status = 422
        else:
            flash(f"User {user.email} created.", "success")
            return redirect(url_for("admin.users"), 303)
    elif request.method == "POST":
        status = 422
    rows = auth_service.list_users(db.session)
    return render("admin/users.html", "content", status=status, form=form, users=rows, now=utcnow(),
                  )


@bp.route("/users/<user_id>", methods=["POST"])
@role_required(Role.admin)
def update_user(user_id: str) -> Response:
    try:
        key = uuid.UUID(user_id)
    except ValueError:
        abort(404)
    form = UserRoleForm()
    if not form.validate_on_submit():
        raise ValidationFailed({"role": "Choose a role."})
    user = auth_service.update_user(
        db.session, current_actor(), key, role=form.role.data, active=bool(form.active.data)
    )
    flash(f"{user.email} saved.", "success")
    return redirect(url_for("admin.users"), 303)


def _user(user_id: str):  # type: ignore[no-untyped-def]
    try:
        key = uuid.UUID(user_id)
    except ValueError:
        abort(404)
    user = db.session.get(User, key)
    if user is None:
        abort(404)
    return user


@bp.route("/users/<user_id>/edit", methods=["GET", "POST"])
@role_required(Role.admin)
def edit_user(user_id: str) -> Response:
    """One user: name, email, role and active; and a password reset."""
    user = _user(user_id)
    form = UserEditForm(obj=user) if request.method == "GET" else UserEditForm()
    if request.method == "GET":
        form.role.data = user.role.value
    status = 200
    if form.validate_on_submit():
        try:
            auth_service.update_user(db.session, current_actor(), user.id, name=form.name.data or "",
                                     email=form.email.data, role=form.role.data,
                                     active=bool(form.active.data))
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
            status = 422
        else:
            flash(f"{user.email} saved.", "success")
            return redirect(url_for("admin.users"), 303)
    elif request.method == "POST":
        status = 422
    return render("admin/user.html", "content", status=status, user=user, form=form,
                  reset=ResetPasswordForm())


@bp.route("/users/<user_id>/password", methods=["POST"])
@role_required(Role.admin)
def reset_password(user_id: str) -> Response:
    user = _user(user_id)
    reset = ResetPasswordForm()
    if reset.validate_on_submit():
        try:
            auth_service.reset_password(db.session, current_actor(), user.id, reset.password.data)
        except ValidationFailed as exc:
            apply_errors(reset, exc)
        else:
            flash(f"Password of {user.email} reset: they choose a new one when they next sign in. "
                  "Their sessions were signed out.", "success")
            return redirect(url_for("admin.users"), 303)
    form = UserEditForm(obj=user)
    form.role.data = user.role.value
    return render("admin/user.html", "content", status=422, user=user, form=form, reset=reset)


def _ordered(key: str) -> list[str]:
    """A precedence list as posted: one input per source in order (the page's ordered list),
    or lines of text (a client without the page); blanks dropped."""
    return [line.strip() for value in request.form.getlist(key) for line in value.splitlines()
            if line.strip()]


def _explain(form: SettingsForm, values: dict) -> None:  # type: ignore[type-arg]
    """What each saved value means, beside its field."""
    auto, review = float(values["auto_merge_threshold"]), float(values["review_threshold"])
    form.stale_after_days.description = (
        f"{values['stale_after_days']}: an active asset that imports saw before but have not "
        f"seen for {values['stale_after_days']} days is stale.")
    form.trash_retention_days.description = (
        f"{values['trash_retention_days']}: deleted assets stay in the trash "
        f"{values['trash_retention_days']} days; then `flask maintenance` purges them for good.")
    form.auto_merge_threshold.description = (
        f"{auto:.2f}: an imported record merges into an existing asset without review when the "
        f"match scores at least {auto:.0%}.")
    form.review_threshold.description = (
        f"{review:.2f}: a match scoring from {review:.0%} up to the auto-merge threshold goes to "
        f"the review queue; below {review:.0%} the record becomes a new asset.")


@bp.route("/settings", methods=["GET", "POST"])
@role_required(Role.admin)
def settings() -> Response:
    form = SettingsForm()
    status = 200
    values = settings_service.all_settings(db.session)
    lists = {k: values[k] for k in settings_service.PRECEDENCE_KEYS}
    if request.method == "GET":
        form.process(data={**values, **{k: "\n".join(values[k]) for k in settings_service.PRECEDENCE_KEYS}})
    elif form.validate_on_submit():
        try:
            changed = settings_service.update(db.session, current_actor(), {
                "stale_after_days": form.stale_after_days.data,
                "trash_retention_days": form.trash_retention_days.data,
                "auto_merge_threshold": float(form.auto_merge_threshold.data),
                "review_threshold": float(form.review_threshold.data),
                **{key: _ordered(key) for key in settings_service.PRECEDENCE_KEYS},
            })
        except ValidationFailed as exc:
            apply_errors(form, exc)
            status = 422
            lists = {k: _ordered(k) for k in settings_service.PRECEDENCE_KEYS}
        else:
            flash("Settings saved." if changed else "Nothing changed.", "success")
            return redirect(url_for("admin.settings"), 303)
    else:
        status = 422
        lists = {k: _ordered(k) for k in settings_service.PRECEDENCE_KEYS}
    return _settings_page(form, values, lists, status=status)


def _settings_page(form: SettingsForm, values: dict, lists: dict, *, status: int = 200,  # type: ignore[type-arg]
                   policy_values: dict | None = None, policy_errors: dict | None = None) -> Response:  # type: ignore[type-arg]
    _explain(form, values)
    stored = values.get("policy_parameters") or {}
    return render("admin/settings.html", "content", status=status, form=form, lists=lists,
                  parameters=policy_reports.parameters_view(stored), policy_values=policy_values or {},
                  policy_errors=policy_errors or {})


@bp.route("/settings/policy", methods=["POST"])
@role_required(Role.admin)
def policy_parameters() -> Response:
    """Save the policy controls' parameters (only values that differ from a control's default
    are kept); when any changed, every asset is re-evaluated by a job."""
    posted: dict[str, dict[str, object]] = {}
    for row in policy_reports.parameters_view({}):
        raw = request.form.get(f"{row['control']}:{row['name']}", "").strip()
        value: object = raw
        if isinstance(row["default"], bool):
            value = raw == "true"
        elif raw == "":
            continue  # left empty: the default
        if value != row["default"] and str(value) != str(row["default"]):
            posted.setdefault(row["control"], {})[row["name"]] = value
    try:
        changed = settings_service.update(db.session, current_actor(), {"policy_parameters": posted})
    except ValidationFailed as exc:
        db.session.rollback()
        values = settings_service.all_settings(db.session)
        form = SettingsForm(formdata=None)
        form.process(data={**values, **{k: "\n".join(values[k]) for k in settings_service.PRECEDENCE_KEYS}})
        return _settings_page(form, values, {k: values[k] for k in settings_service.PRECEDENCE_KEYS},
                              status=422, policy_values=request.form.to_dict(), policy_errors=exc.errors)
    if not changed:
        flash("Policy parameters unchanged.", "success")
        return redirect(url_for("admin.settings") + "#policy-parameters", 303)
    run = policy_runs.queue(db.session, current_actor(), trigger="policy parameters changed")
    started = jobs.policy.dispatch(run)
    flash("Policy parameters saved. Every asset is being re-evaluated; /policy shows the progress."
          + (f" {started.notice}" if started.notice else ""), "success")
    return redirect(url_for("compliance.index"), 303)

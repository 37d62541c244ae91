"""User management and settings (admin only)."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from webapp.admin import bp
from webapp.admin.forms import SettingsForm, UserForm, UserRoleForm
from webapp.extensions import db
from webapp.models import Role
from webapp.models.base import utcnow
from webapp.services import auth as auth_service
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


@bp.route("/settings", methods=["GET", "POST"])
@role_required(Role.admin)
def settings() -> Response:
    form = SettingsForm()
    status = 200
    if request.method == "GET":
        values = settings_service.all_settings(db.session)
        form.process(data={**values, **{k: "\n".join(values[k]) for k in settings_service.PRECEDENCE_KEYS}})
    elif form.validate_on_submit():
        try:
            changed = settings_service.update(db.session, current_actor(), {
                "stale_after_days": form.stale_after_days.data,
                "trash_retention_days": form.trash_retention_days.data,
                "auto_merge_threshold": float(form.auto_merge_threshold.data),
                "review_threshold": float(form.review_threshold.data),
                **{
                    key: [s.strip() for s in (form[key].data or "").splitlines() if s.strip()]
                    for key in settings_service.PRECEDENCE_KEYS
                },
            })
        except ValidationFailed as exc:
            apply_errors(form, exc)
            status = 422
        else:
            flash("Settings saved." if changed else "Nothing changed.", "success")
            return redirect(url_for("admin.settings"), 303)
    else:
        status = 422
    return render("admin/settings.html", "content", status=status, form=form)

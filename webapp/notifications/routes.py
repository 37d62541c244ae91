"""Notification pages (SPEC §13): the bell's count in every page's header (one indexed count,
polled every minute out of band), `/notifications` (newest first, unread and kind filters, mark
read, mark all read) and each person's settings at `/account/notifications`. Everyone manages
their own: every route reads and changes only the signed-in person's rows."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, g, redirect, request, url_for
from flask_login import current_user
from jinja2_fragments.flask import render_block
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from webapp.extensions import db
from webapp.models import EmailMode, EventSeverity, Role
from webapp.notifications import bp
from webapp.notifications.forms import NotificationSettingsForm
from webapp.services import mail, notifications
from webapp.services.errors import ValidationFailed
from webapp.services.outbox import KINDS
from webapp.web.forms import apply_errors
from webapp.web.htmx import is_partial, render
from webapp.web.session import current_actor, role_required


def unread_notifications() -> int | None:
    """The signed-in person's unread count for the bell: one query per request, only when a
    page shows it (None when the database cannot say: an error page still renders)."""
    if "unread_notifications" not in g:
        try:
            g.unread_notifications = notifications.unread_count(db.session, current_user.id)
        except SQLAlchemyError:
            g.unread_notifications = None
    return g.unread_notifications


@bp.app_context_processor
def layout() -> dict[str, Any]:
    return {"unread_notifications": unread_notifications, "bell_cap": notifications.BELL_CAP}


def _forget_count() -> None:
    g.pop("unread_notifications", None)


@bp.route("/notifications/bell")
@role_required(Role.viewer)
def bell() -> Response:
    """The bell alone, out of band (what the header polls every minute)."""
    response = current_app.make_response(render_block("notifications/index.html", "bell_oob"))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/notifications")
@role_required(Role.viewer)
def index() -> Response:
    errors: dict[str, str] = {}
    try:
        unread, kind, before = notifications.parse_filters(
            request.args.get("show"), request.args.get("kind"), request.args.get("before"))
    except ValidationFailed as exc:
        errors = exc.errors
        unread, kind, before = False, None, None
    page = notifications.list_page(db.session, current_user.id, unread=unread, kind=kind, before=before)
    return render("notifications/index.html", "list", status=422 if errors else 200, page=page,
                  unread=unread, kind=kind, kinds=KINDS, errors=errors, oob=is_partial())


@bp.route("/notifications/<notification_id>/open")
@role_required(Role.viewer)
def open_(notification_id: str) -> Response:
    """Mark the notification read and go where it points (an app path; the list otherwise)."""
    row = notifications.mark_read(db.session, current_user.id, notification_id)
    link = row.link or ""
    if not link.startswith("/") or link.startswith("//") or "\\" in link:
        link = url_for("notifications.index")
    return redirect(link, 303)


@bp.route("/notifications/<notification_id>/read", methods=["POST"])
@role_required(Role.viewer)
def read(notification_id: str) -> Response:
    row = notifications.mark_read(db.session, current_user.id, notification_id)
    _forget_count()
    if is_partial():
        return render("notifications/index.html", "item_read", n=row, kinds=KINDS)
    return redirect(url_for("notifications.index"), 303)


@bp.route("/notifications/read-all", methods=["POST"])
@role_required(Role.viewer)
def read_all() -> Response:
    count = notifications.mark_all_read(db.session, current_user.id)
    _forget_count()
    flash(f"{count} notification{'s' if count != 1 else ''} marked read." if count else "Nothing was unread.",
          "success")
    return redirect(url_for("notifications.index"), 303)


@bp.route("/account/notifications", methods=["GET", "POST"])
@role_required(Role.viewer)
def settings() -> Response:
    form = NotificationSettingsForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                notifications.update_preferences(
                    db.session, current_actor(), current_user.id, kinds=list(form.kinds.data or []),
                    min_severity=form.min_severity.data or "", email=bool(form.email.data),
                    email_mode=form.email_mode.data or "")
            except ValidationFailed as exc:
                db.session.rollback()
                apply_errors(form, exc)
                status = 422
            else:
                flash("Notification settings saved.", "success")
                return redirect(url_for("notifications.settings"), 303)
        else:
            status = 422
    else:
        prefs = notifications.preferences(db.session, current_user.id)
        form.kinds.data = prefs.kinds
        form.min_severity.data = prefs.min_severity.value
        form.email.data = prefs.email
        form.email_mode.data = prefs.email_mode.value
    return render("notifications/settings.html", "content", status=status, form=form,
                  email_on=mail.settings() is not None, severities=list(EventSeverity),
                  modes=list(EmailMode))

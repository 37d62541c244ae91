"""Sign-in, sign-out, first-run setup and the account page."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from webapp.auth import bp
from webapp.auth.forms import LoginForm, PasswordForm, SetupForm, TokenForm
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.services import auth as auth_service
from webapp.services import tokens as token_service
from webapp.services.errors import InvalidState, ValidationFailed
from webapp.web.forms import apply_errors
from webapp.web.htmx import render
from webapp.web.session import current_actor


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = auth_service.authenticate(
                db.session, current_actor(), form.email.data, form.password.data,
                max_failures=current_app.config["LOGIN_MAX_FAILURES"],
                ip_max_failures=current_app.config["LOGIN_IP_MAX_FAILURES"],
                lockout_seconds=current_app.config["LOGIN_LOCKOUT_SECONDS"],
            )
        except (auth_service.LoginFailed, auth_service.LoginThrottled) as exc:
            form.form_errors.append(exc.message)
            status = exc.status
        else:
            session.clear()
            auth_service.start_session(db.session, current_actor(user), user)
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 422
    return render("auth/login.html", "content", status=status, form=form)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    # a session already revoked elsewhere (password change, admin) still signs out cleanly
    if current_user.is_authenticated:
        auth_service.end_session(db.session, current_actor(), current_user.session_id)
    logout_user()
    session.clear()
    flash("You have been signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> Response | str:
    if auth_service.user_count(db.session) > 0:
        abort(404)
    form = SetupForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = auth_service.setup_first_admin(
                db.session, current_actor(), email=form.email.data,
                password=form.password.data, name=form.name.data or "",
            )
        except ValidationFailed as exc:
            apply_errors(form, exc)
            status = 422
        except InvalidState:
            abort(404)
        else:
            auth_service.start_session(db.session, current_actor(user), user)
            login_user(user)
            flash("Welcome! Your admin account is ready.", "success")
            return redirect(url_for("dashboard.index"))
    elif request.method == "POST":
        status = 422
    return render("auth/setup.html", "content", status=status, form=form)


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Response | str:
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            auth_service.change_password(
                db.session, current_actor(), current_user, form.current_password.data,
                form.new_password.data,
            )
        except ValidationFailed as exc:
            apply_errors(form, exc)
            status = 422
        else:
            logout_user()
            session.clear()
            flash("Password changed. Every session was signed out; sign in again.", "success")
            return redirect(url_for("auth.login"))
    elif request.method == "POST":
        status = 422
    return render("auth/account.html", "content", status=status, form=form)


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens() -> Response:
    """The user's API tokens. A new token's secret is shown once, in this response only."""
    form = TokenForm()
    status, secret = 200, None
    if form.validate_on_submit():
        days = form.expires_in_days.data
        try:
            _token, secret = token_service.create(
                db.session, current_actor(), current_user, name=form.name.data,
                read_only=bool(form.read_only.data),
                expires_at=utcnow() + timedelta(days=int(days)) if days else None,
            )
        except ValidationFailed as exc:
            apply_errors(form, exc)
            status = 422
        else:
            form = TokenForm(formdata=None)
            status = 201
    elif request.method == "POST":
        status = 422
    return render("auth/tokens.html", "content", status=status, form=form, secret=secret,
                  tokens=token_service.for_user(db.session, current_user), now=utcnow())


@bp.route("/account/tokens/<token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: str) -> Response:
    token = token_service.revoke(db.session, current_actor(), token_id, by=current_user)
    flash(f"Token “{token.name}” revoked.", "success")
    return redirect(url_for("auth.tokens"), 303)

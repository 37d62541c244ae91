"""Flask-Login wiring, the request's Actor, and role checks on the server."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, flash, g, redirect, request, url_for
from flask_login import current_user

from webapp.extensions import db, login_manager
from webapp.models import Role
from webapp.services import auth as auth_service
from webapp.services.actor import Actor
from webapp.services.errors import Forbidden

F = TypeVar("F", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.unauthorized_handler
    def unauthorized() -> Any:
        # an htmx request must not swap the login page into a fragment: send the browser there.
        # Only a GET can be resumed after signing in: `next` to a POST-only URL would end in 405.
        resumable = request.method in ("GET", "HEAD")
        target = url_for("auth.login", next=request.full_path.rstrip("?") if resumable else None)
        if request.headers.get("HX-Request") == "true":
            response = app.response_class(status=401)
            response.headers["HX-Redirect"] = target
            return response
        flash("Please sign in to continue.", "info")
        return redirect(target)

    @login_manager.user_loader
    def load_user(session_id: str) -> Any:
        return auth_service.load_session(db.session, session_id)

    @app.before_request
    def first_run_setup() -> Any:
        # with no users yet, every page leads to /setup
        if request.endpoint in ("auth.setup", "static") or is_api_request():
            return None
        if not g.get("setup_checked"):
            g.setup_checked = True
            if not current_user.is_authenticated and auth_service.user_count(db.session) == 0:
                return redirect(url_for("auth.setup"))
        return None

    @app.context_processor
    def roles() -> dict[str, Any]:
        def can(role: str) -> bool:
            return current_user.is_authenticated and current_user.has_role(Role(role))

        return {"can": can, "Role": Role}


def is_api_request() -> bool:
    return request.path.startswith(("/api/", "/healthz", "/readyz"))


def client_ip() -> str | None:
    # behind a proxy, configure ProxyFix (see README) so remote_addr is the client's address
    return request.remote_addr


def current_actor(user: Any = None) -> Actor:
    """The Actor for changes made in this request (by `user`, default the signed-in one)."""
    if user is None and current_user.is_authenticated:
        user = current_user
    return Actor(
        user_id=user.id if user else None,
        label=user.email if user else "anonymous",
        ip=client_ip(),
        user_agent=request.user_agent.string[:500] or None,
        request_id=g.get("request_id"),
    )


def role_required(role: Role) -> Callable[[F], F]:
    """Sign-in and at least `role`, checked on the server for every request to the view."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.must_change_password:
                return _choose_a_password()
            if not current_user.has_role(role):
                raise Forbidden(f"This needs the {role.value} role or higher.")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def _choose_a_password() -> Any:
    """After an admin reset the password, every page leads to the account page until the user
    chose a new one (the account page itself is `login_required`, not `role_required`)."""
    flash("An admin reset your password. Choose a new one to go on.", "warning")
    target = url_for("auth.account")
    if request.headers.get("HX-Request") == "true":
        response = redirect(target)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, 303)

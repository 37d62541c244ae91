"""Bearer-token authentication for the API. Session cookies are never accepted here."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request

from webapp.extensions import db
from webapp.models import Role
from webapp.services import tokens
from webapp.services.actor import Actor
from webapp.services.errors import Forbidden

F = TypeVar("F", bound=Callable[..., Any])
SECURITY = [{"bearerAuth": []}]


def _bearer_secret() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise tokens.TokenRejected("Send an API token as `Authorization: Bearer <token>`.")
    return secret.strip()


def token_required(role: Role = Role.viewer, *, write: bool = False) -> Callable[[F], F]:
    """Authenticate the bearer token; require `role`, and a read-write token when `write`."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            token = tokens.authenticate(db.session, _bearer_secret())
            if write and token.read_only:
                raise Forbidden("This token is read-only.")
            if not token.user.has_role(role):
                raise Forbidden(f"This needs the {role.value} role or higher.")
            g.api_token = token
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def api_actor() -> Actor:
    """The Actor for a change made through the API: the token's user, labelled with the token."""
    token = g.api_token
    return Actor(
        user_id=token.user_id,
        label=f"{token.user.email} (token {token.name})",
        ip=request.remote_addr,
        user_agent=request.user_agent.string[:500] or None,
        request_id=g.get("request_id"),
    )

"""API tokens: create (secret shown once), revoke, and authenticate a bearer secret."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import ApiToken, AuditAction, User
from webapp.models.base import utcnow
from webapp.services import audit
from webapp.services.actor import Actor
from webapp.services.errors import DomainError, Forbidden, NotFound, ValidationFailed

TOKEN_PREFIX = "inv_"
ENTITY = "api_token"
TOUCH_EVERY = timedelta(minutes=1)


class TokenRejected(DomainError):
    status = 401
    title = "Unauthorized"


def _hash(secret: str) -> str:
    # the secret has 256 bits of entropy, so a fast hash is enough (no password stretching needed)
    return hashlib.sha256(secret.encode()).hexdigest()


def create(
    session: Session,
    actor: Actor,
    user: User,
    *,
    name: str,
    read_only: bool = False,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for `user`; return it and its secret, which is never stored or shown again."""
    name = (name or "").strip()
    errors = {}
    if not name or len(name) > 100:
        errors["name"] = "Enter a name of 1 to 100 characters."
    if expires_at is not None and expires_at <= utcnow():
        errors["expires_at"] = "Choose a time in the future."
    if errors:
        raise ValidationFailed(errors)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        id=uuid.uuid4(), user_id=user.id, name=name, prefix=secret[:12],
        secret_hash=_hash(secret), read_only=read_only, expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    audit.record(
        session, actor, AuditAction.token_create, ENTITY, token.id,
        {"name": [None, name], "read_only": [None, read_only], "user": [None, user.email],
         "expires_at": [None, expires_at], "secret": [None, "***"]},
        message=f"token {token.prefix}… for {user.email}",
    )
    session.commit()
    return token, secret


def revoke(session: Session, actor: Actor, token_id: uuid.UUID | str, *, by: User) -> ApiToken:
    """Revoke a token. Its owner or an admin may."""
    try:
        key = token_id if isinstance(token_id, uuid.UUID) else uuid.UUID(str(token_id))
    except ValueError:
        raise NotFound("No such token.") from None
    token = session.get(ApiToken, key)
    if token is None:
        raise NotFound("No such token.")
    if token.user_id != by.id and by.role.value != "admin":
        raise Forbidden("Only the token's owner or an admin can revoke it.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, actor, AuditAction.token_revoke, ENTITY, token.id,
                     {"revoked_at": [None, token.revoked_at]},
                     message=f"token {token.prefix}… of {token.user.email}")
        session.commit()
    return token


def for_user(session: Session, user: User) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
        )
    )


def authenticate(session: Session, secret: str) -> ApiToken:
    """The usable token behind a bearer secret, or TokenRejected (one message for every cause)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise TokenRejected("The bearer token is malformed.")
    token = session.scalar(select(ApiToken).where(ApiToken.secret_hash == _hash(secret)))
    now = utcnow()
    if token is None or not token.is_usable(now) or not token.user.active:
        raise TokenRejected("The bearer token is not valid: unknown, revoked or expired.")
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        token.last_used_at = now
        session.commit()
    return token

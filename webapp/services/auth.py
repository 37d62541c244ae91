"""Users, sign-in with throttling, and server-side sessions."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from webapp.models import AuditAction, EventSeverity, LoginThrottle, Role, User, UserSession
from webapp.models.base import utcnow
from webapp.services import audit, outbox
from webapp.services.actor import Actor
from webapp.services.errors import DomainError, InvalidState, ValidationFailed
from webapp.services.text import UNSTORABLE

MIN_PASSWORD_LENGTH = 12
# argon2id at OWASP's first recommended profile or stronger: m=19 MiB, t=2, p=1
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# verified against when the account does not exist, so timing does not tell
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))
ENTITY = "user"
SESSION_TOUCH_EVERY = timedelta(minutes=5)


class LoginFailed(DomainError):
    status = 401
    title = "Sign-in failed"


class LoginThrottled(DomainError):
    status = 429
    title = "Too many attempts"


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def _validate_user(email: str, password: str, role: str) -> dict[str, str]:
    errors = {}
    if "@" not in email or len(email) > 254 or " " in email:
        errors["email"] = "Enter a valid email address."
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if role not in Role.__members__:
        errors["role"] = f"Choose one of: {', '.join(Role.__members__)}."
    return errors


def list_users(session: Session) -> list[User]:
    """Every user, by email (the admin's users page)."""
    return list(session.scalars(select(User).order_by(User.email)))


def user_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def create_user(
    session: Session, actor: Actor, *, email: str, password: str, role: str, name: str = ""
) -> User:
    """Create a user with an argon2id password hash; audited as `create`."""
    email = normalise_email(email)
    errors = _validate_user(email, password, role)
    if not errors and session.scalar(select(User.id).where(User.email == email)):
        errors["email"] = "A user with this email already exists."
    if errors:
        raise ValidationFailed(errors)
    user = User(
        id=uuid.uuid4(), email=email, name=name.strip()[:200], role=Role(role),
        password_hash=HASHER.hash(password), active=True, failed_logins=0,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, AuditAction.create, ENTITY, user.id,
                 {"email": [None, email], "role": [None, role], "password": [None, "***"]})
    session.commit()
    return user


def setup_first_admin(session: Session, actor: Actor, *, email: str, password: str, name: str = "") -> User:
    """Create the first admin; refused once any user exists."""
    if user_count(session) > 0:
        raise InvalidState("Setup is already complete.")
    return create_user(session, actor, email=email, password=password, role="admin", name=name)


def update_user(session: Session, actor: Actor, user_id: uuid.UUID, *, role: str | None = None,
                active: bool | None = None, name: str | None = None,
                email: str | None = None) -> User:
    """Change a user's role, active flag, name or email (admin only, checked by the caller's
    route); one audited `update` with what changed. The last active admin stays one."""
    user = session.get(User, user_id)
    if user is None:
        raise ValidationFailed({"user": "No such user."})
    demoted = role is not None and role in Role.__members__ and Role(role) != Role.admin
    _keep_an_admin(session, user, demoted=demoted, deactivated=active is False)
    changes: dict[str, list[Any]] = {}
    if email is not None:
        email = normalise_email(email)
        if UNSTORABLE.search(email) or "@" not in email or len(email) > 254 or " " in email:
            raise ValidationFailed({"email": "Enter a valid email address."})
        taken = session.scalar(select(User.id).where(User.email == email, User.id != user.id))
        if taken:
            raise ValidationFailed({"email": "A user with this email already exists."})
        if email != user.email:
            changes["email"] = [user.email, email]
            user.email = email
    if name is not None:
        name = name.strip()
        if UNSTORABLE.search(name) or len(name) > 200:
            raise ValidationFailed({"name": "Use at most 200 characters, without control characters."})
        if name != user.name:
            changes["name"] = [user.name, name]
            user.name = name
    if role is not None:
        if role not in Role.__members__:
            raise ValidationFailed({"role": f"Choose one of: {', '.join(Role.__members__)}."})
        if user.role != Role(role):
            changes["role"] = [user.role.value, role]
            user.role = Role(role)
    if active is not None and user.active != active:
        changes["active"] = [user.active, active]
        user.active = active
        if not active:
            revoke_all_sessions(session, user.id)
    if changes:
        audit.record(session, actor, AuditAction.update, ENTITY, user.id, changes)
    session.commit()
    return user


def _keep_an_admin(session: Session, user: User, *, demoted: bool, deactivated: bool) -> None:
    """Refuse a change that would leave no active admin. The active admins' rows are locked
    first, so two admins demoting each other at once cannot both succeed."""
    if not (user.role == Role.admin and user.active and (demoted or deactivated)):
        return
    admins = session.scalars(
        select(User.id).where(User.role == Role.admin, User.active.is_(True)).with_for_update()
    ).all()
    if not set(admins) - {user.id}:
        field = "role" if demoted else "active"
        raise ValidationFailed(
            {field: f"{user.email} is the last active admin. Make another user an admin first."},
            "This change would leave no active admin.",
        )


def _throttle(session: Session, key: str) -> LoginThrottle:
    row = session.get(LoginThrottle, key, with_for_update=True)
    if row is None:
        row = LoginThrottle(key=key, failures=0, window_started_at=utcnow())
        session.add(row)
    return row


def _is_locked(session: Session, keys: list[str]) -> bool:
    now = utcnow()
    rows = session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))
    return any(r.locked_until is not None and r.locked_until > now for r in rows)


def authenticate(
    session: Session, actor: Actor, email: str, password: str, *,
    max_failures: int, ip_max_failures: int, lockout_seconds: int,
) -> User:
    """Check a password. Failures are counted per address typed and per IP; too many lock both
    out for a while. The messages never say whether the account exists."""
    email = normalise_email(email)
    keys = [f"email:{email}", f"ip:{actor.ip or 'unknown'}"]
    user = session.scalar(select(User).where(User.email == email))
    if _is_locked(session, keys):
        _verify(user, password)  # same work as any attempt, so timing tells nothing
        audit.record(session, Actor(None, email or "unknown", actor.ip, actor.user_agent,
                                    actor.request_id), AuditAction.login_failed, ENTITY,
                     user.id if user else None, message="refused: temporarily locked")
        session.commit()
        raise LoginThrottled("Too many failed sign-ins. Try again in a few minutes.")
    if user is not None and user.active and _verify(user, password):
        for key in keys[:1]:
            row = session.get(LoginThrottle, key)
            if row is not None:
                session.delete(row)
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = utcnow()
        if HASHER.check_needs_rehash(user.password_hash):
            user.password_hash = HASHER.hash(password)
        session.flush()
        return user
    if user is None:
        _verify(None, password)
    now = utcnow()
    locked_now = False
    locked_keys: list[str] = []
    for key, limit in zip(keys, (max_failures, ip_max_failures), strict=True):
        row = _throttle(session, key)
        if row.window_started_at < now - timedelta(seconds=lockout_seconds):
            row.failures, row.window_started_at = 0, now
        row.failures += 1
        if row.failures >= limit:
            row.locked_until = now + timedelta(seconds=lockout_seconds)
            row.failures = 0
            row.window_started_at = now
            locked_now = True
            locked_keys.append(key)
    if user is not None:
        user.failed_logins += 1
        if locked_now:
            user.locked_until = now + timedelta(seconds=lockout_seconds)
    message = "wrong password or unknown account"
    if locked_now:
        message += f"; locked for {lockout_seconds // 60} minutes"
        _announce_lockout(session, locked_keys, user, lockout_seconds, now)
    audit.record(session, Actor(None, email or "unknown", actor.ip, actor.user_agent,
                                actor.request_id), AuditAction.login_failed, ENTITY,
                 user.id if user else None, message=message)
    session.commit()
    if locked_now:
        raise LoginThrottled("Too many failed sign-ins. Try again in a few minutes.")
    raise LoginFailed("Invalid email or password.")


def _announce_lockout(session: Session, keys: list[str], user: User | None, lockout_seconds: int,
                      now: datetime) -> None:
    """Raise `lockout` for admins (severity high), with the failed sign-in's audit event: what
    was locked (the address typed, the IP) and until when. At most one per locked key an hour,
    so a password-spraying run does not bury the admins."""
    what = " and ".join(f"{'IP' if k.startswith('ip:') else 'sign-in for'} {k.split(':', 1)[1]}" for k in keys)
    minutes = max(1, lockout_seconds // 60)
    outbox.emit(
        session, "lockout", subject=f"Locked out after repeated failed sign-ins: {what}",
        severity=EventSeverity.high, min_role=Role.admin,
        body=f"Sign-in is refused for {minutes} minutes.",
        link=f"/admin/users/{user.id}/edit" if user is not None else "/audit?action=login_failed",
        payload={"keys": keys, "user_id": str(user.id) if user else None,
                 "locked_until": (now + timedelta(seconds=lockout_seconds)).isoformat()},
        dedupe_key=f"lockout:{now:%Y-%m-%dT%H}:{':'.join(keys)}",
    )


def _verify(user: User | None, password: str) -> bool:
    try:
        return HASHER.verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
    except (VerificationError, InvalidHashError):
        return False


def start_session(session: Session, actor: Actor, user: User) -> UserSession:
    """Record a signed-in browser and audit the login; the cookie carries only the session id."""
    row = UserSession(id=secrets.token_urlsafe(32), user_id=user.id, ip=actor.ip,
                      user_agent=(actor.user_agent or "")[:500] or None)
    session.add(row)
    audit.record(session, actor, AuditAction.login, ENTITY, user.id)
    session.commit()
    user.session_id = row.id
    return row


def load_session(session: Session, session_id: str) -> User | None:
    """The user behind a session cookie, or None when the session was revoked or the user disabled."""
    row = session.get(UserSession, session_id)
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    now = utcnow()
    if now - row.last_seen_at > SESSION_TOUCH_EVERY:
        row.last_seen_at = now
        session.commit()
    user = row.user
    user.session_id = row.id
    return user


def end_session(session: Session, actor: Actor, session_id: str) -> None:
    """Revoke one session on the server (logout); audited."""
    row = session.get(UserSession, session_id)
    if row is None or row.revoked_at is not None:
        return
    row.revoked_at = utcnow()
    audit.record(session, actor, AuditAction.logout, ENTITY, row.user_id)
    session.commit()


def revoke_all_sessions(session: Session, user_id: uuid.UUID) -> None:
    session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def reset_password(session: Session, actor: Actor, user_id: uuid.UUID, new: str) -> User:
    """An admin sets a temporary password: every session of the user is signed out, and the
    user must choose a new password at the next sign-in. Audited without the password."""
    user = session.get(User, user_id)
    if user is None:
        raise ValidationFailed({"user": "No such user."})
    if len(new) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed({"password": f"Use at least {MIN_PASSWORD_LENGTH} characters."})
    user.password_hash = HASHER.hash(new)
    user.must_change_password = True
    user.failed_logins, user.locked_until = 0, None
    revoke_all_sessions(session, user.id)
    audit.record(session, actor, AuditAction.update, ENTITY, user.id,
                 {"password": ["***", "***"], "must_change_password": [False, True]},
                 message="Password reset by an admin; every session was signed out.")
    session.commit()
    return user


def change_password(session: Session, actor: Actor, user: User, current: str, new: str) -> None:
    """Change a password and sign out every session of the user."""
    if not _verify(user, current):
        raise ValidationFailed({"current_password": "This is not your current password."})
    if len(new) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed({"new_password": f"Use at least {MIN_PASSWORD_LENGTH} characters."})
    if user.must_change_password and _verify(user, new):
        raise ValidationFailed({"new_password": "Choose a password other than the one an admin set."})
    user.must_change_password = False
    user.password_hash = HASHER.hash(new)
    revoke_all_sessions(session, user.id)
    audit.record(session, actor, AuditAction.update, ENTITY, user.id, {"password": ["***", "***"]})
    session.commit()

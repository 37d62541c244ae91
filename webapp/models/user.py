"""Users, their server-side sessions, and login throttling."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, JSONType, UUIDPrimaryKey, str_enum, utcnow
from webapp.models.enums import Role


class User(UUIDPrimaryKey, Base):
    __tablename__ = "users"

    # stored lower-cased, which makes the unique constraint case-insensitive on every backend
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(str_enum(Role), default=Role.viewer)
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # an admin reset the password: every page leads to the account page until it is changed
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=false())
    # the person's choices that outlive a session (the asset list's page size and columns)
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, server_default="{}")

    # Flask-Login protocol; the session id (not the user id) is what the cookie carries.
    session_id = None

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str | None:
        return self.session_id

    def has_role(self, role: Role) -> bool:
        return self.role.at_least(role)


class UserSession(Base):
    """A signed-in browser. Revoking the row signs that browser out on every app server."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))

    user: Mapped[User] = relationship(lazy="joined")


class LoginThrottle(Base):
    """Failed sign-ins counted per key (`email:<address>` or `ip:<address>`).

    Keyed by the address typed, whether or not an account exists, so a lockout reveals nothing.
    """

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]

"""The API token service's contracts, called directly: create (secret shown once, stored hashed),
authenticate, revoke, read-only."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from webapp.models import ApiToken, AuditAction, AuditEvent
from webapp.models.base import utcnow
from webapp.services import auth, tokens
from webapp.services.actor import Actor
from webapp.services.errors import Forbidden, NotFound, ValidationFailed

SYSTEM = Actor.system("test")
REJECTED = "The bearer token is not valid: unknown, revoked or expired."


def _events(session, action: AuditAction) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                .order_by(AuditEvent.id)))


def _rejected(session, secret: str) -> tokens.TokenRejected:  # type: ignore[no-untyped-def]
    with pytest.raises(tokens.TokenRejected) as caught:
        tokens.authenticate(session, secret)
    assert caught.value.status == 401
    return caught.value


def _stored(session, token_id) -> ApiToken:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(ApiToken, token_id)


# --- create ------------------------------------------------------------------------------------

def test_create_returns_the_secret_once_and_stores_only_its_hash(session, make_user):
    user = make_user("analyst")
    expires = utcnow() + timedelta(days=30)
    token, secret = tokens.create(session, SYSTEM, user, name="  ci pipeline  ",
                                  expires_at=expires)
    assert secret.startswith(tokens.TOKEN_PREFIX) and len(secret) >= 40
    stored = _stored(session, token.id)
    assert stored.user_id == user.id and stored.name == "ci pipeline"
    assert stored.prefix == secret[:12]
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert stored.read_only is False and stored.revoked_at is None and stored.last_used_at is None
    assert stored.expires_at == expires
    # the secret itself is nowhere in the row or the audit event
    row = session.execute(select(ApiToken.__table__).where(ApiToken.id == token.id)).one()
    assert not any(secret[12:] in str(v) for v in row)
    [event] = _events(session, AuditAction.token_create)
    assert event.entity_type == "api_token" and event.entity_id == str(token.id)
    assert event.changes["secret"] == [None, "***"]
    assert event.changes["name"] == [None, "ci pipeline"]
    assert event.changes["read_only"] == [None, False]
    assert event.changes["user"] == [None, user.email]
    assert event.message == f"token {stored.prefix}… for {user.email}"
    assert secret[12:] not in str(event.changes)


def test_every_token_gets_its_own_secret(session, make_user):
    user = make_user("viewer")
    secrets = {tokens.create(session, SYSTEM, user, name=f"t{i}")[1] for i in range(4)}
    assert len(secrets) == 4
    assert session.scalar(select(func.count(func.distinct(ApiToken.secret_hash)))) == 4


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "n" * 101}, "name"),
    ({"expires_at": "past"}, "expires_at"),
    ({"expires_at": "now"}, "expires_at"),
])
def test_create_refuses_a_bad_name_or_expiry_by_field(session, make_user, kwargs, field):
    user = make_user("viewer")
    when = {"past": utcnow() - timedelta(minutes=1), "now": utcnow()}
    args = {"name": "ok", **kwargs}
    if "expires_at" in args:
        args["expires_at"] = when[args["expires_at"]]
    with pytest.raises(ValidationFailed) as caught:
        tokens.create(session, SYSTEM, user, **args)
    assert list(caught.value.errors) == [field]
    assert session.scalar(select(func.count()).select_from(ApiToken)) == 0
    assert _events(session, AuditAction.token_create) == []


def test_a_name_of_100_characters_is_accepted(session, make_user):
    token, _ = tokens.create(session, SYSTEM, make_user("viewer"), name="n" * 100)
    assert _stored(session, token.id).name == "n" * 100


def test_the_read_only_flag_is_stored_and_returned(make_token, session):
    ro = make_token("analyst", read_only=True)
    rw = make_token("analyst")
    assert _stored(session, ro.token.id).read_only is True
    assert _stored(session, rw.token.id).read_only is False
    assert tokens.authenticate(session, ro.secret).read_only is True
    assert tokens.authenticate(session, rw.secret).read_only is False
    [first, second] = _events(session, AuditAction.token_create)
    assert first.changes["read_only"] == [None, True] and second.changes["read_only"] == [None, False]


def test_for_user_lists_only_that_users_tokens_newest_first(session, make_user):
    user, other = make_user("viewer"), make_user("viewer")
    made = [tokens.create(session, SYSTEM, user, name=f"t{i}")[0] for i in range(3)]
    tokens.create(session, SYSTEM, other, name="theirs")
    # the same creation instant must not make the order depend on the backend
    for i, token in enumerate(made):
        session.execute(update(ApiToken).where(ApiToken.id == token.id)
                        .values(created_at=utcnow() - timedelta(hours=3 - i)))
    session.commit()
    assert [t.name for t in tokens.for_user(session, user)] == ["t2", "t1", "t0"]


# --- authenticate ------------------------------------------------------------------------------

def test_a_valid_secret_authenticates_and_records_its_use(make_token, session):
    issued = make_token("analyst")
    before = utcnow()
    token = tokens.authenticate(session, issued.secret)
    assert token.id == issued.token.id and token.user.id == issued.user.id
    used = _stored(session, issued.token.id).last_used_at
    assert used is not None and used >= before


def test_last_used_at_is_written_at_most_once_a_minute(make_token, session):
    issued = make_token("viewer")
    tokens.authenticate(session, issued.secret)
    first = _stored(session, issued.token.id).last_used_at
    tokens.authenticate(session, issued.secret)
    assert _stored(session, issued.token.id).last_used_at == first
    old = utcnow() - tokens.TOUCH_EVERY - timedelta(seconds=5)
    session.execute(update(ApiToken).where(ApiToken.id == issued.token.id)
                    .values(last_used_at=old))
    session.commit()
    tokens.authenticate(session, issued.secret)
    assert _stored(session, issued.token.id).last_used_at > old + timedelta(seconds=5)


@pytest.mark.parametrize("secret", ["", "Bearer inv_x", "not-a-token", "inv_" + "x" * 200])
def test_a_malformed_secret_is_rejected(session, secret):
    assert _rejected(session, secret).message == "The bearer token is malformed."


def test_an_unknown_secret_is_rejected(make_token, session):
    issued = make_token("viewer")
    assert _rejected(session, issued.secret + "x").message == REJECTED
    assert _rejected(session, "inv_" + "A" * 43).message == REJECTED
    assert _stored(session, issued.token.id).last_used_at is None


def test_a_revoked_token_is_rejected(make_token, session):
    issued = make_token("viewer")
    tokens.revoke(session, SYSTEM, issued.token.id, by=issued.user)
    assert _rejected(session, issued.secret).message == REJECTED


def test_an_expired_token_is_rejected(make_token, session):
    issued = make_token("viewer", expires_at=utcnow() + timedelta(hours=1))
    assert tokens.authenticate(session, issued.secret).id == issued.token.id
    session.execute(update(ApiToken).where(ApiToken.id == issued.token.id)
                    .values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert _rejected(session, issued.secret).message == REJECTED


def test_a_deactivated_users_token_is_rejected_and_works_again_on_reactivation(
        make_token, make_user, session):
    make_user("admin")
    issued = make_token("analyst")
    auth.update_user(session, SYSTEM, issued.user.id, active=False)
    assert _rejected(session, issued.secret).message == REJECTED
    auth.update_user(session, SYSTEM, issued.user.id, active=True)
    assert tokens.authenticate(session, issued.secret).id == issued.token.id


# --- revoke ------------------------------------------------------------------------------------

def test_the_owner_revokes_a_token_once_with_an_audit_event(make_token, session):
    issued = make_token("viewer")
    revoked = tokens.revoke(session, SYSTEM, str(issued.token.id), by=issued.user)
    stamp = _stored(session, issued.token.id).revoked_at
    assert revoked.id == issued.token.id and stamp is not None
    [event] = _events(session, AuditAction.token_revoke)
    assert event.entity_id == str(issued.token.id)
    assert event.message == f"token {issued.token.prefix}… of {issued.user.email}"
    # revoking again changes nothing
    tokens.revoke(session, SYSTEM, issued.token.id, by=issued.user)
    assert _stored(session, issued.token.id).revoked_at == stamp
    assert len(_events(session, AuditAction.token_revoke)) == 1


def test_an_admin_may_revoke_anyones_token(make_token, make_user, session):
    issued = make_token("analyst")
    admin = make_user("admin")
    tokens.revoke(session, SYSTEM, issued.token.id, by=admin)
    assert _stored(session, issued.token.id).revoked_at is not None


@pytest.mark.parametrize("role", ["viewer", "analyst", "reviewer"])
def test_someone_else_below_admin_may_not_revoke(make_token, make_user, session, role):
    issued = make_token("viewer")
    with pytest.raises(Forbidden):
        tokens.revoke(session, SYSTEM, issued.token.id, by=make_user(role))
    assert _stored(session, issued.token.id).revoked_at is None
    assert _events(session, AuditAction.token_revoke) == []
    assert tokens.authenticate(session, issued.secret).id == issued.token.id


@pytest.mark.parametrize("token_id", ["not-a-uuid", "", str(uuid.UUID(int=0))])
def test_revoking_an_unknown_token_is_not_found(make_user, session, token_id):
    with pytest.raises(NotFound):
        tokens.revoke(session, SYSTEM, token_id, by=make_user("admin"))

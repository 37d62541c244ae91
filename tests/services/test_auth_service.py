"""The auth service's contracts, called directly: users, sign-in throttling, server-side sessions,
password changes and the rule that an active admin always remains."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from sqlalchemy import func, select, update

from tests.conftest import PASSWORD
from webapp.models import AuditAction, AuditEvent, LoginThrottle, Role, User, UserSession
from webapp.models.base import utcnow
from webapp.services import auth
from webapp.services.actor import Actor
from webapp.services.errors import InvalidState, ValidationFailed

SYSTEM = Actor.system("test")
VISITOR = Actor(user_id=None, label="anonymous", ip="192.0.2.7", user_agent="pytest/1",
                request_id="req-1")
MAX_FAILURES = 5
LOCKOUT = 900
BAD_LOGIN = "Invalid email or password."
LOCKED = "Too many failed sign-ins. Try again in a few minutes."


def _login(session, email: str, password: str = PASSWORD, actor: Actor = VISITOR,  # type: ignore[no-untyped-def]
           ip_max: int = 100) -> User:
    return auth.authenticate(session, actor, email, password, max_failures=MAX_FAILURES,
                             ip_max_failures=ip_max, lockout_seconds=LOCKOUT)


def _fail(session, email: str, password: str = "wrong password!", **kwargs) -> Exception:  # type: ignore[no-untyped-def]
    with pytest.raises((auth.LoginFailed, auth.LoginThrottled)) as caught:
        _login(session, email, password, **kwargs)
    return caught.value


def _events(session, action: AuditAction) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                .order_by(AuditEvent.id)))


def _throttle(session, key: str) -> LoginThrottle | None:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(LoginThrottle, key)


def _user(session, user_id) -> User:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(User, user_id)


# --- create_user -------------------------------------------------------------------------------

def test_create_user_normalises_the_email_and_hashes_with_argon2id(session):
    user = auth.create_user(session, SYSTEM, email="  Alice@Example.COM ", password=PASSWORD,
                            role="analyst", name="  Alice Liddell  ")
    stored = _user(session, user.id)
    assert stored.email == "alice@example.com"
    assert stored.name == "Alice Liddell"
    assert stored.role is Role.analyst and stored.active and stored.failed_logins == 0
    assert stored.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in stored.password_hash
    assert PasswordHasher().verify(stored.password_hash, PASSWORD)
    [event] = _events(session, AuditAction.create)
    assert event.entity_type == "user" and event.entity_id == str(user.id)
    assert event.changes == {"email": [None, "alice@example.com"], "role": [None, "analyst"],
                             "password": [None, "***"]}


def test_create_user_refuses_a_duplicate_email_whatever_its_case(session):
    auth.create_user(session, SYSTEM, email="bob@example.com", password=PASSWORD, role="viewer")
    with pytest.raises(ValidationFailed) as caught:
        auth.create_user(session, SYSTEM, email=" BOB@example.com", password=PASSWORD,
                         role="admin")
    assert caught.value.errors == {"email": "A user with this email already exists."}
    assert auth.user_count(session) == 1


@pytest.mark.parametrize(("kwargs", "errors"), [
    ({"password": "x" * 11}, {"password": "Use at least 12 characters."}),
    ({"role": "superuser"}, {"role": "Choose one of: viewer, analyst, reviewer, admin."}),
    ({"role": "Admin"}, {"role": "Choose one of: viewer, analyst, reviewer, admin."}),
    ({"email": "no-at-sign"}, {"email": "Enter a valid email address."}),
    ({"email": "a b@example.com"}, {"email": "Enter a valid email address."}),
    ({"email": "a@" + "e" * 253}, {"email": "Enter a valid email address."}),
    ({"email": "   "}, {"email": "Enter a valid email address."}),
    ({"email": "x", "password": "short", "role": "root"}, {
        "email": "Enter a valid email address.", "password": "Use at least 12 characters.",
        "role": "Choose one of: viewer, analyst, reviewer, admin."}),
])
def test_create_user_refuses_bad_input_by_field(session, kwargs, errors):
    args = {"email": "carol@example.com", "password": PASSWORD, "role": "viewer", **kwargs}
    with pytest.raises(ValidationFailed) as caught:
        auth.create_user(session, SYSTEM, **args)
    assert caught.value.errors == errors
    assert auth.user_count(session) == 0
    assert _events(session, AuditAction.create) == []


def test_a_password_of_exactly_the_minimum_length_is_accepted(session):
    user = auth.create_user(session, SYSTEM, email="min@example.com",
                            password="x" * auth.MIN_PASSWORD_LENGTH, role="viewer")
    assert _login(session, "min@example.com", "x" * auth.MIN_PASSWORD_LENGTH).id == user.id


def test_setup_first_admin_only_while_there_are_no_users(session):
    admin = auth.setup_first_admin(session, SYSTEM, email="root@example.com", password=PASSWORD)
    assert admin.role is Role.admin
    with pytest.raises(InvalidState):
        auth.setup_first_admin(session, SYSTEM, email="two@example.com", password=PASSWORD)
    assert auth.user_count(session) == 1


def test_list_users_is_every_user_by_email(session, make_user):
    for email in ("zed@example.com", "amy@example.com", "Max@example.com"):
        make_user("viewer", email=email)
    inactive = make_user("admin", email="bea@example.com")
    other_admin = make_user("admin", email="adm@example.com")  # so bea may be deactivated
    auth.update_user(session, SYSTEM, inactive.id, active=False)
    users = auth.list_users(session)
    assert [u.email for u in users] == ["adm@example.com", "amy@example.com", "bea@example.com",
                                        "max@example.com", "zed@example.com"]
    assert [u.active for u in users] == [True, True, False, True, True]
    assert users[0].id == other_admin.id


# --- authenticate ------------------------------------------------------------------------------

def test_the_right_password_signs_in_whatever_the_email_case(session, make_user):
    user = make_user("viewer", email="dan@example.com")
    signed_in = _login(session, "  DAN@Example.com ")
    assert signed_in.id == user.id
    assert _user(session, user.id).last_login_at is not None


def test_a_wrong_password_is_counted_and_audited(session, make_user):
    user = make_user("viewer", email="eve@example.com")
    error = _fail(session, "eve@example.com")
    assert isinstance(error, auth.LoginFailed) and error.message == BAD_LOGIN
    assert _user(session, user.id).failed_logins == 1
    assert _throttle(session, "email:eve@example.com").failures == 1
    assert _throttle(session, "ip:192.0.2.7").failures == 1
    [event] = _events(session, AuditAction.login_failed)
    assert event.entity_id == str(user.id) and event.actor_label == "eve@example.com"
    assert event.actor_id is None and event.ip == "192.0.2.7" and event.request_id == "req-1"
    assert event.message == "wrong password or unknown account"


def test_success_resets_the_failures_of_the_account(session, make_user):
    user = make_user("viewer", email="fay@example.com")
    for _ in range(MAX_FAILURES - 1):
        _fail(session, "fay@example.com")
    assert _user(session, user.id).failed_logins == MAX_FAILURES - 1
    _login(session, "fay@example.com")
    session.commit()
    stored = _user(session, user.id)
    assert stored.failed_logins == 0 and stored.locked_until is None
    assert _throttle(session, "email:fay@example.com") is None
    # the IP's count is not the account's to reset
    assert _throttle(session, "ip:192.0.2.7").failures == MAX_FAILURES - 1
    # a fresh run of failures starts from zero: one more is not a lockout
    assert isinstance(_fail(session, "fay@example.com"), auth.LoginFailed)


def test_too_many_failures_lock_the_account_even_for_the_right_password(session, make_user):
    user = make_user("viewer", email="gus@example.com")
    errors = [_fail(session, "gus@example.com") for _ in range(MAX_FAILURES)]
    assert [type(e) for e in errors] == [auth.LoginFailed] * (MAX_FAILURES - 1) + [auth.LoginThrottled]
    assert errors[-1].message == LOCKED
    stored = _user(session, user.id)
    assert stored.failed_logins == MAX_FAILURES
    assert stored.locked_until is not None and stored.locked_until > utcnow()
    assert _throttle(session, "email:gus@example.com").locked_until > utcnow() + timedelta(
        seconds=LOCKOUT - 60)

    refused = _fail(session, "gus@example.com", PASSWORD)
    assert isinstance(refused, auth.LoginThrottled) and refused.message == LOCKED
    messages = [e.message for e in _events(session, AuditAction.login_failed)]
    assert messages[MAX_FAILURES - 1] == "wrong password or unknown account; locked for 15 minutes"
    assert messages[-1] == "refused: temporarily locked"
    assert len(messages) == MAX_FAILURES + 1


def test_the_lock_expires(session, make_user):
    make_user("viewer", email="hal@example.com")
    for _ in range(MAX_FAILURES):
        _fail(session, "hal@example.com")
    session.execute(update(LoginThrottle).values(locked_until=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert _login(session, "hal@example.com").email == "hal@example.com"


def test_failures_outside_the_window_start_a_new_count(session, make_user):
    make_user("viewer", email="ida@example.com")
    for _ in range(MAX_FAILURES - 1):
        _fail(session, "ida@example.com")
    session.execute(update(LoginThrottle).values(
        window_started_at=utcnow() - timedelta(seconds=LOCKOUT + 1)))
    session.commit()
    assert isinstance(_fail(session, "ida@example.com"), auth.LoginFailed)
    assert _throttle(session, "email:ida@example.com").failures == 1


def test_an_unknown_account_fails_and_locks_exactly_like_a_real_one(session, make_user):
    make_user("viewer", email="jo@example.com")
    real = [_fail(session, "jo@example.com", actor=Actor(None, "a", ip="192.0.2.1"))
            for _ in range(MAX_FAILURES)]
    ghost = [_fail(session, "ghost@example.com", actor=Actor(None, "b", ip="192.0.2.2"))
             for _ in range(MAX_FAILURES)]
    assert [(type(e), e.message, e.status) for e in ghost] == [
        (type(e), e.message, e.status) for e in real]
    assert _throttle(session, "email:ghost@example.com").locked_until is not None
    ghost_events = [e for e in _events(session, AuditAction.login_failed)
                    if e.actor_label == "ghost@example.com"]
    assert len(ghost_events) == MAX_FAILURES and all(e.entity_id is None for e in ghost_events)


def test_too_many_failures_from_one_ip_lock_that_ip_for_every_account(session, make_user):
    make_user("viewer", email="kim@example.com")
    attacker = Actor(None, "x", ip="198.51.100.23")
    errors = [_fail(session, f"guess{i}@example.com", actor=attacker, ip_max=3) for i in range(3)]
    assert [type(e) for e in errors] == [auth.LoginFailed, auth.LoginFailed, auth.LoginThrottled]
    assert isinstance(_fail(session, "kim@example.com", PASSWORD, actor=attacker, ip_max=3),
                      auth.LoginThrottled)
    # the account itself is not locked
    elsewhere = Actor(None, "y", ip="192.0.2.99")
    assert _login(session, "kim@example.com", actor=elsewhere, ip_max=3).email == "kim@example.com"


def test_an_inactive_user_cannot_sign_in_even_with_the_right_password(session, make_user):
    user = make_user("viewer", email="lea@example.com")
    auth.update_user(session, SYSTEM, user.id, active=False)
    error = _fail(session, "lea@example.com", PASSWORD)
    assert isinstance(error, auth.LoginFailed) and error.message == BAD_LOGIN
    assert _user(session, user.id).failed_logins == 1


def test_a_corrupt_stored_hash_is_a_failed_sign_in_not_an_error(session, make_user):
    user = make_user("viewer", email="mo@example.com")
    session.execute(update(User).where(User.id == user.id).values(password_hash="not-a-hash"))
    session.commit()
    assert isinstance(_fail(session, "mo@example.com", PASSWORD), auth.LoginFailed)


def test_a_weaker_hash_is_upgraded_on_sign_in(session, make_user):
    user = make_user("viewer", email="ned@example.com")
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    session.execute(update(User).where(User.id == user.id).values(password_hash=weak))
    session.commit()
    _login(session, "ned@example.com")
    session.commit()
    upgraded = _user(session, user.id).password_hash
    assert upgraded != weak and upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert auth.HASHER.verify(upgraded, PASSWORD)


# --- sessions ----------------------------------------------------------------------------------

def test_a_started_session_loads_its_user_until_it_ends(session, make_user):
    user = make_user("viewer")
    actor = Actor(user.id, user.email, ip="192.0.2.8", user_agent="UA " * 300)
    row = auth.start_session(session, actor, user)
    assert len(row.id) >= 40 and user.session_id == row.id
    stored = session.get(UserSession, row.id)
    assert stored.user_id == user.id and stored.ip == "192.0.2.8" and len(stored.user_agent) == 500
    [login] = _events(session, AuditAction.login)
    assert login.entity_id == str(user.id) and login.actor_id == user.id

    loaded = auth.load_session(session, row.id)
    assert loaded is not None and loaded.id == user.id and loaded.session_id == row.id

    auth.end_session(session, actor, row.id)
    assert auth.load_session(session, row.id) is None
    assert session.get(UserSession, row.id).revoked_at is not None
    auth.end_session(session, actor, row.id)  # a second logout changes nothing
    auth.end_session(session, actor, "no-such-session")
    assert len(_events(session, AuditAction.logout)) == 1


def test_an_unknown_session_loads_nobody(session):
    assert auth.load_session(session, "forged") is None


def test_a_deactivated_users_sessions_load_nobody(session, make_user):
    user = make_user("viewer")
    row = auth.start_session(session, SYSTEM, user)
    auth.update_user(session, SYSTEM, user.id, active=False)
    assert auth.load_session(session, row.id) is None
    assert _user(session, user.id).active is False
    assert session.get(UserSession, row.id).revoked_at is not None


def test_load_session_touches_last_seen_only_after_a_while(session, make_user):
    user = make_user("viewer")
    row = auth.start_session(session, SYSTEM, user)
    first_seen = session.get(UserSession, row.id).last_seen_at
    auth.load_session(session, row.id)
    session.expire_all()
    assert session.get(UserSession, row.id).last_seen_at == first_seen
    old = utcnow() - auth.SESSION_TOUCH_EVERY - timedelta(seconds=5)
    session.execute(update(UserSession).where(UserSession.id == row.id).values(last_seen_at=old))
    session.commit()
    auth.load_session(session, row.id)
    session.expire_all()
    assert session.get(UserSession, row.id).last_seen_at > old + timedelta(seconds=5)


def test_revoke_all_sessions_revokes_only_that_users(session, make_user):
    user, other = make_user("viewer"), make_user("viewer")
    mine = [auth.start_session(session, SYSTEM, user).id for _ in range(3)]
    theirs = auth.start_session(session, SYSTEM, other).id
    auth.revoke_all_sessions(session, user.id)
    session.commit()
    assert all(auth.load_session(session, s) is None for s in mine)
    assert auth.load_session(session, theirs).id == other.id


# --- change_password ---------------------------------------------------------------------------

def test_change_password_replaces_the_hash_and_signs_out_everywhere(session, make_user):
    user = make_user("viewer", email="ola@example.com")
    sessions = [auth.start_session(session, SYSTEM, user).id for _ in range(2)]
    new = "a brand new passphrase"
    auth.change_password(session, Actor(user.id, user.email), user, PASSWORD, new)
    assert all(auth.load_session(session, s) is None for s in sessions)
    stored = _user(session, user.id)
    assert auth.HASHER.verify(stored.password_hash, new)
    with pytest.raises(VerifyMismatchError):
        auth.HASHER.verify(stored.password_hash, PASSWORD)
    assert _login(session, "ola@example.com", new).id == user.id
    assert isinstance(_fail(session, "ola@example.com", PASSWORD), auth.LoginFailed)
    [event] = [e for e in _events(session, AuditAction.update) if e.entity_id == str(user.id)]
    assert event.changes == {"password": ["***", "***"]}
    assert new not in str(event.changes)


@pytest.mark.parametrize(("current", "new", "errors"), [
    ("not my password", "a brand new passphrase",
     {"current_password": "This is not your current password."}),
    (PASSWORD, "x" * 11, {"new_password": "Use at least 12 characters."}),
])
def test_change_password_refuses_by_field_and_changes_nothing(session, make_user, current, new,
                                                              errors):
    user = make_user("viewer")
    live = auth.start_session(session, SYSTEM, user).id
    before = user.password_hash
    with pytest.raises(ValidationFailed) as caught:
        auth.change_password(session, SYSTEM, user, current, new)
    assert caught.value.errors == errors
    assert _user(session, user.id).password_hash == before
    assert auth.load_session(session, live) is not None


# --- update_user and the last active admin -----------------------------------------------------

def test_update_user_changes_role_and_active_with_an_audit_event(session, make_user):
    make_user("admin")
    user = make_user("viewer")
    auth.update_user(session, SYSTEM, user.id, role="reviewer", active=False)
    stored = _user(session, user.id)
    assert stored.role is Role.reviewer and stored.active is False
    [event] = [e for e in _events(session, AuditAction.update) if e.entity_id == str(user.id)]
    assert event.changes == {"role": ["viewer", "reviewer"], "active": [True, False]}


def test_update_user_without_a_change_writes_no_event(session, make_user):
    user = make_user("analyst")
    auth.update_user(session, SYSTEM, user.id, role="analyst", active=True)
    auth.update_user(session, SYSTEM, user.id)
    assert _events(session, AuditAction.update) == []


def test_update_user_refuses_an_unknown_user_or_role(session, make_user):
    with pytest.raises(ValidationFailed) as caught:
        auth.update_user(session, SYSTEM, uuid.uuid4(), role="viewer")
    assert caught.value.errors == {"user": "No such user."}
    user = make_user("viewer")
    with pytest.raises(ValidationFailed) as caught:
        auth.update_user(session, SYSTEM, user.id, role="owner")
    assert list(caught.value.errors) == ["role"]
    assert _user(session, user.id).role is Role.viewer


@pytest.mark.parametrize(("change", "field"), [
    ({"role": "reviewer"}, "role"),
    ({"role": "viewer", "active": True}, "role"),
    ({"active": False}, "active"),
    ({"role": "admin", "active": False}, "active"),
])
def test_the_last_active_admin_cannot_be_demoted_or_deactivated(session, make_user, change, field):
    admin = make_user("admin", email="root@example.com")
    make_user("reviewer")
    with pytest.raises(ValidationFailed) as caught:
        auth.update_user(session, SYSTEM, admin.id, **change)
    assert caught.value.errors == {
        field: "root@example.com is the last active admin. Make another user an admin first."}
    assert caught.value.message == "This change would leave no active admin."
    stored = _user(session, admin.id)
    assert stored.role is Role.admin and stored.active is True
    assert _events(session, AuditAction.update) == []


def test_the_last_active_admin_may_still_be_saved_unchanged(session, make_user):
    admin = make_user("admin")
    auth.update_user(session, SYSTEM, admin.id, role="admin", active=True)
    assert _user(session, admin.id).role is Role.admin


def test_an_inactive_admin_does_not_count_as_another_admin(session, make_user):
    admin, dormant = make_user("admin"), make_user("admin")
    auth.update_user(session, SYSTEM, dormant.id, active=False)
    with pytest.raises(ValidationFailed) as caught:
        auth.update_user(session, SYSTEM, admin.id, role="viewer")
    assert list(caught.value.errors) == ["role"]


def test_another_active_admin_lets_one_step_down_and_then_is_the_last(session, make_user):
    first, second = make_user("admin"), make_user("admin")
    auth.update_user(session, SYSTEM, first.id, role="analyst")
    assert _user(session, first.id).role is Role.analyst
    with pytest.raises(ValidationFailed) as caught:
        auth.update_user(session, SYSTEM, second.id, active=False)
    assert list(caught.value.errors) == ["active"]
    # promoting someone makes it possible again
    auth.update_user(session, SYSTEM, first.id, role="admin")
    auth.update_user(session, SYSTEM, second.id, active=False)
    assert _user(session, second.id).active is False
    admins = select(func.count()).select_from(User).where(User.role == Role.admin,
                                                          User.active.is_(True))
    assert session.scalar(admins) == 1

"""`flask keys rotate`, `flask maintenance` and `flask stats`."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

from cryptography.fernet import Fernet
from sqlalchemy import select, update

from tests.conftest import base_config
from tests.factories import make_asset
from webapp import create_app
from webapp.extensions import db as _db
from webapp.models import Asset, AuditAction, AuditEvent
from webapp.models.base import utcnow
from webapp.services import assets, audit, crypto
from webapp.services.actor import Actor


@contextmanager
def _app(database_url: str, keys: list[str]):  # type: ignore[no-untyped-def]
    """An app with these encryption keys on the test database, its connections closed after."""
    app = create_app({**base_config(database_url), "INVENTORY_ENCRYPTION_KEYS": keys})
    with app.app_context():
        try:
            yield app
        finally:
            _db.session.remove()
            _db.engine.dispose()


def test_keys_rotate_re_encrypts_with_the_first_key(database_url):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with _app(database_url, [old]):
        a = make_asset(_db.session, connection_string="postgresql://app:s3cret@db/x")
        asset_id, version = a.id, a.version
    with _app(database_url, [new, old]) as rotating:
        result = rotating.test_cli_runner().invoke(args=["keys", "rotate"])
        assert result.exit_code == 0, result.output
        assert "Re-encrypted 1 secret" in result.output
        event = _db.session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
        assert event.action == AuditAction.key_rotate
        assert audit.verify(_db.session).ok
    with _app(database_url, [new]):  # the old key is gone: still readable
        a = _db.session.get(Asset, asset_id)
        assert crypto.decrypt(_db.session, a.connection_string_encrypted).endswith("s3cret@db/x")
        assert a.version == version  # the value did not change, so neither did the version


def test_keys_rotate_without_the_old_key_fails_clearly_and_changes_nothing(database_url):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with _app(database_url, [old]):
        a = make_asset(_db.session, connection_string="postgresql://app:s3cret@db/x")
        before = a.connection_string_encrypted
        asset_id = a.id
    with _app(database_url, [new]) as only_new:
        result = only_new.test_cli_runner().invoke(args=["keys", "rotate"])
        assert result.exit_code == 2
        assert "none of the configured keys" in result.output
        _db.session.rollback()
        assert _db.session.get(Asset, asset_id).connection_string_encrypted == before


def test_maintenance_purges_only_trash_past_retention(session, runner):
    old = make_asset(session, name="long-gone")
    recent = make_asset(session, name="just-deleted")
    live = make_asset(session, name="live")
    for a in (old, recent):
        assets.delete(session, Actor.system(), a.id)
    # deleted 40 days ago (retention is 30); last seen 60 days ago (stale after 30)
    session.execute(update(Asset).where(Asset.name == "long-gone")
                    .values(deleted_at=utcnow() - timedelta(days=40)))
    session.execute(update(Asset).where(Asset.name == "live")  # missed by a covering scan 59 days ago
                    .values(last_seen_at=utcnow() - timedelta(days=60), missed_since=utcnow() - timedelta(days=59)))
    session.commit()
    result = runner.invoke(args=["maintenance"])
    assert result.exit_code == 0, result.output
    assert "Purged 1 asset(s)" in result.output and "1 active asset(s) are stale" in result.output
    session.expire_all()
    names = set(session.scalars(select(Asset.name)))
    assert names == {"just-deleted", "live"}
    purge = session.scalar(select(AuditEvent).where(AuditEvent.action == AuditAction.purge))
    assert purge.actor_label == "maintenance" and purge.entity_id == str(old.id)
    again = runner.invoke(args=["maintenance"])
    assert "Purged 0 asset(s)" in again.output
    assert live.id in set(session.scalars(select(Asset.id)))


def test_stats_prints_counts(session, runner):
    make_asset(session, engine="mysql", environment="staging")
    make_asset(session, engine="postgresql", environment="production")
    result = runner.invoke(args=["stats"])
    assert result.exit_code == 0
    assert "assets: 2 (in trash: 0, stale: 0)" in result.output
    assert "mysql 1" in result.output and "postgresql 1" in result.output

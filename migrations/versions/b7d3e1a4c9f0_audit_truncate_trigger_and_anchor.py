"""audit log: refuse TRUNCATE (statement-level trigger); record the chain's anchor

The anchor is the newest event's id and hash, kept in the `settings` row `audit_anchor` and moved
in the same transaction as every append, so `audit verify` reports a log that was cut short
(truncated, or its newest events removed) instead of "OK".

Revision ID: b7d3e1a4c9f0
Revises: 1ef445fca6bc
Create Date: 2026-12-06 21:40:00.000000

"""
import json

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7d3e1a4c9f0'
down_revision = '1ef445fca6bc'
branch_labels = None
depends_on = None

ANCHOR_KEY = "audit_anchor"


def _is_postgresql():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    if _is_postgresql():
        # audit_events_immutable() (initial schema) raises for any TG_OP, TRUNCATE included
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_immutable()"
        )
    bind = op.get_bind()
    newest = bind.execute(sa.text("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")).first()
    if newest is not None:
        bind.execute(sa.text("DELETE FROM settings WHERE key = :key"), {"key": ANCHOR_KEY})
        value = json.dumps({"id": newest.id, "hash": newest.hash})
        cast = "CAST(:value AS jsonb)" if _is_postgresql() else ":value"
        bind.execute(
            sa.text(f"INSERT INTO settings (key, value, updated_at) VALUES (:key, {cast}, CURRENT_TIMESTAMP)"),
            {"key": ANCHOR_KEY, "value": value},
        )


def downgrade():
    if _is_postgresql():
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
    op.execute(sa.text("DELETE FROM settings WHERE key = 'audit_anchor'"))

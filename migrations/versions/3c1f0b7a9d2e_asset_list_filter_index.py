"""asset list: partial covering index over live assets' filter columns

On PostgreSQL the list's capped count ("more than 10,000") and its tag filter read this index
alone (an index-only scan) instead of the table: at 100,000 assets the count for
environment=production drops from ~14 ms to ~2 ms and for tag=pci from ~45 ms to ~20 ms.
Index-only scans rely on the visibility map, which (auto)vacuum keeps current. Hand-written;
SQLite gets a plain index (postgresql_include/postgresql_where are ignored there), as the model.

Revision ID: 3c1f0b7a9d2e
Revises: 6854951088cf
Create Date: 2026-11-23 21:15:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3c1f0b7a9d2e'
down_revision = '6854951088cf'
branch_labels = None
depends_on = None


def upgrade():
    # postgresql_include / postgresql_where are ignored by other dialects
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.create_index(
            'ix_assets_live_filters',
            ['environment', 'engine', 'status', 'criticality', 'data_classification'],
            unique=False,
            postgresql_include=['id'],
            postgresql_where=sa.text('deleted_at IS NULL'),
        )


def downgrade():
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.drop_index('ix_assets_live_filters')

"""scan coverage: what each import run covered (hosts and ports, cloud account and region), for honest staleness (SPEC §6)

* `import_runs.coverage` (JSON: scan hosts, networks, TCP port ranges, cloud scopes) and
  `import_runs.missed` (how many assets the run covered and did not see);
* `assets.missed_since`: when a covering run first missed the asset after its last sighting;
* partial indexes for `seen=stale` (missed live assets) and `seen=unverified` (live assets no
  discovery saw), in list order (name, id);
* `asset_identifiers.key` with `text_pattern_ops` on PostgreSQL, for the prefix searches that
  find the assets a finished scan covered whatever the database's collation (SQLite: a plain
  index).

Existing assets start with `missed_since` NULL: none is stale until a covering run misses it.

Revision ID: 6ad1b9c5d876
Revises: 5fc0a8b4c765
Create Date: 2026-12-07 10:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

from webapp.models.base import JSONType, UTCDateTime

# revision identifiers, used by Alembic.
revision = '6ad1b9c5d876'
down_revision = '5fc0a8b4c765'
branch_labels = None
depends_on = None


MISSED = "missed_since IS NOT NULL AND deleted_at IS NULL"
UNVERIFIED = "last_seen_at IS NULL AND first_seen_at IS NULL AND deleted_at IS NULL"


def upgrade():
    op.add_column('import_runs', sa.Column('coverage', JSONType, nullable=True))
    op.add_column('import_runs', sa.Column('missed', sa.Integer(), server_default='0', nullable=False))
    op.add_column('assets', sa.Column('missed_since', UTCDateTime(timezone=True), nullable=True))
    op.create_index('ix_assets_missed_name', 'assets', ['name', 'id'], unique=False,
                    postgresql_where=sa.text(MISSED), sqlite_where=sa.text(MISSED))
    op.create_index('ix_assets_unverified_name', 'assets', ['name', 'id'], unique=False,
                    postgresql_where=sa.text(UNVERIFIED), sqlite_where=sa.text(UNVERIFIED))
    op.create_index('ix_asset_identifiers_key_prefix', 'asset_identifiers', ['key'], unique=False,
                    postgresql_ops={'key': 'text_pattern_ops'})


def downgrade():
    op.drop_index('ix_asset_identifiers_key_prefix', table_name='asset_identifiers')
    op.drop_index('ix_assets_unverified_name', table_name='assets')
    op.drop_index('ix_assets_missed_name', table_name='assets')
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.drop_column('missed_since')
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.drop_column('missed')
        batch_op.drop_column('coverage')

"""observations: the last value each source reported for each field of an asset (SPEC §6)

Also the review items' new status `superseded` (a field conflict that is now an observation).
`conflicts.status` is a non-native enum without a CHECK constraint (a VARCHAR(32) on both
backends), so the new value needs no schema change. Closing the open field conflicts that are
now observations writes audit events, so it is a service step, not SQL here:
`flask --app webapp conflicts supersede` (the container's `migrate` runs it after upgrading;
see docs/decisions.md). The table has no foreign key on the asset or the run: an import writes
about ten rows per record, and checking the keys was half their cost (assets are removed only by
`assets.purge`, which removes their observations too; runs are never removed).

Revision ID: 5fc0a8b4c765
Revises: 4ebc9a7f3b65
Create Date: 2026-12-07 10:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

from webapp.models.base import JSONType, UTCDateTime

# revision identifiers, used by Alembic.
revision = '5fc0a8b4c765'
down_revision = '4ebc9a7f3b65'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'observations',
        sa.Column('asset_id', sa.Uuid(), nullable=False),
        sa.Column('field', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=100), nullable=False),
        sa.Column('import_run_id', sa.Uuid(), nullable=True),
        sa.Column('reported_by', sa.Uuid(), nullable=True),
        sa.Column('value', JSONType, nullable=False),
        sa.Column('seen_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['reported_by'], ['users.id'], name=op.f('fk_observations_reported_by_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('asset_id', 'field', 'source', name=op.f('pk_observations')),
    )


def downgrade():
    op.drop_table('observations')

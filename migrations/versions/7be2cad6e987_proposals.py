"""proposals: manual edits waiting for a second person's approval (SPEC §5 Review)

Revision ID: 7be2cad6e987
Revises: 6ad1b9c5d876
Create Date: 2026-12-07 10:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

from webapp.models.base import JSONType, UTCDateTime

# revision identifiers, used by Alembic.
revision = '7be2cad6e987'
down_revision = '6ad1b9c5d876'
branch_labels = None
depends_on = None


STATUS = sa.Enum('open', 'approved', 'rejected', name='proposalstatus', native_enum=False,
                 length=16)


def upgrade():
    op.create_table(
        'proposals',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('asset_id', sa.Uuid(), nullable=False),
        sa.Column('base_version', sa.Integer(), nullable=False),
        sa.Column('changes', JSONType, nullable=False),
        sa.Column('change_set_id', sa.Uuid(), nullable=True),
        sa.Column('status', STATUS, nullable=False),
        sa.Column('proposed_by', sa.Uuid(), nullable=True),
        sa.Column('proposed_by_label', sa.String(length=300), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('decided_by', sa.Uuid(), nullable=True),
        sa.Column('decided_by_label', sa.String(length=300), nullable=True),
        sa.Column('decided_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('applied_version', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_proposals_asset_id_assets'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['change_set_id'], ['change_sets.id'],
                                name=op.f('fk_proposals_change_set_id_change_sets'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['proposed_by'], ['users.id'], name=op.f('fk_proposals_proposed_by_users')),
        sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name=op.f('fk_proposals_decided_by_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_proposals')),
    )
    op.create_index('ix_proposals_status_created_at', 'proposals', ['status', 'created_at'])
    op.create_index('ix_proposals_asset_id_status', 'proposals', ['asset_id', 'status'])


def downgrade():
    op.drop_index('ix_proposals_asset_id_status', table_name='proposals')
    op.drop_index('ix_proposals_status_created_at', table_name='proposals')
    op.drop_table('proposals')

"""task schedules: the scheduler's lease (SPEC §13)

Revision ID: 3dab8f6e2a54
Revises: 2c9a7e5d1f43
Create Date: 2026-12-07 07:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

from webapp.models.base import UTCDateTime

# revision identifiers, used by Alembic.
revision = '3dab8f6e2a54'
down_revision = '2c9a7e5d1f43'
branch_labels = None
depends_on = None


def upgrade():
    # the schedules themselves are a setting (task_schedules); this is who may act on them
    op.create_table(
        'scheduler_leases',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('holder', sa.String(length=200), nullable=False),
        sa.Column('acquired_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduler_leases')),
    )


def downgrade():
    op.drop_table('scheduler_leases')

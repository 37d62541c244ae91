"""outbox: events that must reach someone, written with the change that caused them (SPEC §10, §13)

Revision ID: 0a7e5c3b9d21
Revises: a8d4c2e6f0b1
Create Date: 2026-12-07 07:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

from webapp.models.base import JSONType, UTCDateTime

# revision identifiers, used by Alembic.
revision = '0a7e5c3b9d21'
down_revision = 'a8d4c2e6f0b1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'outbox',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('kind', sa.String(length=64), nullable=False),
        sa.Column('severity', sa.Enum('info', 'low', 'medium', 'high', 'critical', name='eventseverity',
                                      native_enum=False, length=16), nullable=False),
        sa.Column('subject', sa.String(length=300), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('link', sa.String(length=500), nullable=True),
        sa.Column('payload', JSONType, nullable=False),
        sa.Column('recipient_id', sa.Uuid(), nullable=True),
        sa.Column('min_role', sa.Enum('viewer', 'analyst', 'reviewer', 'admin', name='role',
                                      native_enum=False, length=16), nullable=False),
        sa.Column('dedupe_key', sa.String(length=200), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('dispatched_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['recipient_id'], ['users.id'], name=op.f('fk_outbox_recipient_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
        sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbox_dedupe_key')),
    )
    op.create_index(op.f('ix_outbox_kind'), 'outbox', ['kind'])
    op.create_index('ix_outbox_pending', 'outbox', ['dispatched_at', 'created_at'])


def downgrade():
    op.drop_index('ix_outbox_pending', table_name='outbox')
    op.drop_index(op.f('ix_outbox_kind'), table_name='outbox')
    op.drop_table('outbox')

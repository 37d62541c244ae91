"""notifications: in-app notifications and each person's notification preferences (SPEC §13)

Revision ID: 1b8f6d4c0e32
Revises: 0a7e5c3b9d21
Create Date: 2026-12-07 07:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

from webapp.models.base import BigIntPK, JSONType, UTCDateTime

# revision identifiers, used by Alembic.
revision = '1b8f6d4c0e32'
down_revision = '0a7e5c3b9d21'
branch_labels = None
depends_on = None


SEVERITY = sa.Enum('info', 'low', 'medium', 'high', 'critical', name='eventseverity', native_enum=False,
                   length=16)


def upgrade():
    op.create_table(
        'notifications',
        sa.Column('id', BigIntPK, autoincrement=True, nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('event_id', sa.Uuid(), nullable=False),
        sa.Column('kind', sa.String(length=64), nullable=False),
        sa.Column('severity', SEVERITY, nullable=False),
        sa.Column('subject', sa.String(length=300), nullable=False),
        sa.Column('link', sa.String(length=500), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('read_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('mail_pending', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(['event_id'], ['outbox.id'], name=op.f('fk_notifications_event_id_outbox'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
        sa.UniqueConstraint('user_id', 'event_id', name='uq_notifications_user_id_event_id'),
    )
    op.create_index(op.f('ix_notifications_event_id'), 'notifications', ['event_id'])
    op.create_index('ix_notifications_user_id_read_at', 'notifications', ['user_id', 'read_at'])
    op.create_index('ix_notifications_user_id_id', 'notifications', ['user_id', 'id'])
    op.create_table(
        'notification_preferences',
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('muted_kinds', JSONType, nullable=False),
        sa.Column('min_severity', SEVERITY, nullable=False),
        sa.Column('email', sa.Boolean(), nullable=False),
        sa.Column('email_mode', sa.Enum('digest', 'immediate', name='emailmode', native_enum=False, length=16),
                  nullable=False),
        sa.Column('last_digest_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notification_preferences_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_preferences')),
    )


def downgrade():
    op.drop_table('notification_preferences')
    op.drop_index('ix_notifications_user_id_id', table_name='notifications')
    op.drop_index('ix_notifications_user_id_read_at', table_name='notifications')
    op.drop_index(op.f('ix_notifications_event_id'), table_name='notifications')
    op.drop_table('notifications')

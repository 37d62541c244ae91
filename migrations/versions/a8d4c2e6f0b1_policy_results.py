"""policy: results (one row per asset and control that applies, kept current with every change),
exceptions (an asset may fail a control until a date) and the daily posture snapshot (SPEC §12);
task runs (a background task's progress: the policy re-evaluation, later scheduled tasks, §13)

Revision ID: a8d4c2e6f0b1
Revises: f7c3a9e1d2b4
Create Date: 2026-12-07 03:40:00.000000

"""
import sqlalchemy as sa
from alembic import op

from webapp.models.base import JSONType, UTCDateTime

# revision identifiers, used by Alembic.
revision = 'a8d4c2e6f0b1'
down_revision = 'f7c3a9e1d2b4'
branch_labels = None
depends_on = None

STATUS = sa.Enum('pass', 'fail', 'unknown', 'excepted', name='policystatus', native_enum=False,
                 length=16)


def upgrade():
    op.create_table(
        'policy_results',
        sa.Column('asset_id', sa.Uuid(), nullable=False),
        sa.Column('control_id', sa.String(length=64), nullable=False),
        sa.Column('status', STATUS, nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('evaluated_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_policy_results_asset_id_assets'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('asset_id', 'control_id', name=op.f('pk_policy_results')),
    )
    op.create_index('ix_policy_results_control_status', 'policy_results', ['control_id', 'status'])
    op.create_index('ix_policy_results_status_asset', 'policy_results', ['status', 'asset_id'])
    op.create_table(
        'policy_exceptions',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('asset_id', sa.Uuid(), nullable=False),
        sa.Column('control_id', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('expires_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('granted_by', sa.Uuid(), nullable=True),
        sa.Column('granted_by_label', sa.String(length=300), nullable=False),
        sa.Column('granted_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('expiry_handled_at', UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_policy_exceptions_asset_id_assets'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['granted_by'], ['users.id'], name=op.f('fk_policy_exceptions_granted_by_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_exceptions')),
    )
    op.create_index('ix_policy_exceptions_asset_control', 'policy_exceptions', ['asset_id', 'control_id'])
    op.create_index(op.f('ix_policy_exceptions_expires_at'), 'policy_exceptions', ['expires_at'])
    op.create_table(
        'task_runs',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('task', sa.String(length=64), nullable=False),
        sa.Column('status', sa.Enum('queued', 'running', 'succeeded', 'failed', name='taskstatus',
                                    native_enum=False, length=16), nullable=False),
        sa.Column('trigger', sa.String(length=300), nullable=False),
        sa.Column('actor_label', sa.String(length=300), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('processed', sa.Integer(), nullable=False),
        sa.Column('result', JSONType, nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('started_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('finished_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('heartbeat_at', UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_task_runs')),
    )
    op.create_index(op.f('ix_task_runs_task'), 'task_runs', ['task'])
    op.create_index(op.f('ix_task_runs_created_at'), 'task_runs', ['created_at'])
    op.create_table(
        'policy_snapshots',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('assets', sa.Integer(), nullable=False),
        sa.Column('counts', JSONType, nullable=False),
        sa.Column('frameworks', JSONType, nullable=False),
        sa.Column('taken_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('day', name=op.f('pk_policy_snapshots')),
    )


def downgrade():
    op.drop_table('policy_snapshots')
    op.drop_index(op.f('ix_task_runs_created_at'), table_name='task_runs')
    op.drop_index(op.f('ix_task_runs_task'), table_name='task_runs')
    op.drop_table('task_runs')
    op.drop_index(op.f('ix_policy_exceptions_expires_at'), table_name='policy_exceptions')
    op.drop_index('ix_policy_exceptions_asset_control', table_name='policy_exceptions')
    op.drop_table('policy_exceptions')
    op.drop_index('ix_policy_results_status_asset', table_name='policy_results')
    op.drop_index('ix_policy_results_control_status', table_name='policy_results')
    op.drop_table('policy_results')

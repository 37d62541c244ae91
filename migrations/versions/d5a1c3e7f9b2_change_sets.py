"""change sets: bulk actions and their undo as one reviewable, undoable unit; the frozen selection
of a bulk action (one row per asset, with the version it had at preview); and the change set
each audit event belongs to (null for events outside change sets, which keeps their hashes)

Revision ID: d5a1c3e7f9b2
Revises: c4e8f2a6b1d3
Create Date: 2026-12-07 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import webapp.models.base
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'd5a1c3e7f9b2'
down_revision = 'c4e8f2a6b1d3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('change_sets',
    sa.Column('number', sa.Integer(), nullable=True),
    sa.Column('kind', sa.Enum('bulk', 'undo', 'import', 'load', name='changesetkind', native_enum=False, length=32), nullable=False),
    sa.Column('status', sa.Enum('previewed', 'queued', 'running', 'succeeded', 'failed', name='changesetstatus', native_enum=False, length=32), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('actor_label', sa.String(length=300), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=500), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('selection', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('preview', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('matched', sa.Integer(), nullable=False),
    sa.Column('changed', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('locked', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('reported', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('undo_of', sa.Uuid(), nullable=True),
    sa.Column('undone_by', sa.Uuid(), nullable=True),
    sa.Column('runner', sa.String(length=20), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', webapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', webapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', webapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', webapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_change_sets_actor_id_users')),
    sa.ForeignKeyConstraint(['undo_of'], ['change_sets.id'], name=op.f('fk_change_sets_undo_of_change_sets')),
    sa.ForeignKeyConstraint(['undone_by'], ['change_sets.id'], name=op.f('fk_change_sets_undone_by_change_sets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_sets')),
    sa.UniqueConstraint('number', name=op.f('uq_change_sets_number')),
    sa.UniqueConstraint('undo_of', name=op.f('uq_change_sets_undo_of')),
    sa.UniqueConstraint('undone_by', name=op.f('uq_change_sets_undone_by'))
    )
    with op.batch_alter_table('change_sets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_sets_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_change_sets_status'), ['status'], unique=False)

    op.create_table('change_set_items',
    sa.Column('change_set_id', sa.Uuid(), nullable=False),
    sa.Column('asset_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_change_set_items_asset_id_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['change_set_id'], ['change_sets.id'], name=op.f('fk_change_set_items_change_set_id_change_sets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('change_set_id', 'asset_id', name=op.f('pk_change_set_items'))
    )
    with op.batch_alter_table('change_set_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_set_items_asset_id'), ['asset_id'], unique=False)

    # a nullable column without a default: PostgreSQL adds it without rewriting (or updating)
    # a row, so the audit trigger that refuses UPDATE has nothing to refuse
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('change_set_id', sa.Uuid(), nullable=True))
        batch_op.create_index('ix_audit_events_change_set_id_id', ['change_set_id', 'id'], unique=False, postgresql_where=sa.text('change_set_id IS NOT NULL'), sqlite_where=sa.text('change_set_id IS NOT NULL'))
        batch_op.create_foreign_key(batch_op.f('fk_audit_events_change_set_id_change_sets'), 'change_sets', ['change_set_id'], ['id'])



def downgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_audit_events_change_set_id_change_sets'), type_='foreignkey')
        batch_op.drop_index('ix_audit_events_change_set_id_id', postgresql_where=sa.text('change_set_id IS NOT NULL'), sqlite_where=sa.text('change_set_id IS NOT NULL'))
        batch_op.drop_column('change_set_id')

    with op.batch_alter_table('change_set_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_set_items_asset_id'))

    op.drop_table('change_set_items')
    with op.batch_alter_table('change_sets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_sets_status'))
        batch_op.drop_index(batch_op.f('ix_change_sets_created_at'))

    op.drop_table('change_sets')

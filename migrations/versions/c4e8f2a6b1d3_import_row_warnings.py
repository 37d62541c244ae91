"""import runs: records written with warnings (how many, and the first 1,000 with their rows)

Revision ID: c4e8f2a6b1d3
Revises: b7d3e1a4c9f0
Create Date: 2026-12-06 22:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = 'c4e8f2a6b1d3'
down_revision = 'b7d3e1a4c9f0'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('warned', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('row_warnings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default='[]', nullable=False))


def downgrade():
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.drop_column('row_warnings')
        batch_op.drop_column('warned')

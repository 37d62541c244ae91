"""users: must_change_password (an admin reset the password: the user chooses a new one at the
next sign-in) and preferences (the asset list's page size and columns, kept per user)

Revision ID: e6b2d4f8a0c1
Revises: d5a1c3e7f9b2
Create Date: 2026-12-07 01:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'e6b2d4f8a0c1'
down_revision = 'd5a1c3e7f9b2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('preferences', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                                      nullable=False, server_default='{}'))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('preferences')
        batch_op.drop_column('must_change_password')

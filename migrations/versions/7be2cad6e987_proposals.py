"""proposals: manual edits waiting for a second person's approval (SPEC §5 Review)

Revision ID: 7be2cad6e987
Revises: 6ad1b9c5d876
Create Date: 2026-12-07 10:30:00.000000

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

# revision identifiers, used by Alembic.
revision = '7be2cad6e987'
down_revision = '6ad1b9c5d876'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass

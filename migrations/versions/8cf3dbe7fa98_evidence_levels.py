"""evidence levels: placeholder for matching changes that need schema (empty if none)

Revision ID: 8cf3dbe7fa98
Revises: 7be2cad6e987
Create Date: 2026-12-07 10:30:00.000000

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

# revision identifiers, used by Alembic.
revision = '8cf3dbe7fa98'
down_revision = '7be2cad6e987'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass

"""notifications: in-app notifications and each person's notification preferences (SPEC §13)

Revision ID: 1b8f6d4c0e32
Revises: 0a7e5c3b9d21
Create Date: 2026-12-07 07:00:00.000000

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

# revision identifiers, used by Alembic.
revision = '1b8f6d4c0e32'
down_revision = '0a7e5c3b9d21'
branch_labels = None
depends_on = None


def upgrade():
    pass  # filled in by the notifications work (issue 15)


def downgrade():
    pass

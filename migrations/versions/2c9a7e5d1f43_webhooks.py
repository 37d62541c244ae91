"""webhooks: admin-registered receivers and their delivery attempts (SPEC §13)

Revision ID: 2c9a7e5d1f43
Revises: 1b8f6d4c0e32
Create Date: 2026-12-07 07:00:00.000000

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

# revision identifiers, used by Alembic.
revision = '2c9a7e5d1f43'
down_revision = '1b8f6d4c0e32'
branch_labels = None
depends_on = None


def upgrade():
    pass  # filled in by the webhooks work (issue 15)


def downgrade():
    pass

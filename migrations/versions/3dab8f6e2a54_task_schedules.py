"""task schedules: the scheduler's lease (SPEC §13)

Revision ID: 3dab8f6e2a54
Revises: 2c9a7e5d1f43
Create Date: 2026-12-07 07:00:00.000000

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

# revision identifiers, used by Alembic.
revision = '3dab8f6e2a54'
down_revision = '2c9a7e5d1f43'
branch_labels = None
depends_on = None


def upgrade():
    pass  # filled in by the task_schedules work (issue 15)


def downgrade():
    pass

"""observations: the last value each source reported for each field of an asset (SPEC §6)

Revision ID: 5fc0a8b4c765
Revises: 4ebc9a7f3b65
Create Date: 2026-12-07 10:30:00.000000

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

# revision identifiers, used by Alembic.
revision = '5fc0a8b4c765'
down_revision = '4ebc9a7f3b65'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass

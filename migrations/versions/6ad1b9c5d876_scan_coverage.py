"""scan coverage: what each import run covered (hosts and ports, cloud account and region), for honest staleness (SPEC §6)

Revision ID: 6ad1b9c5d876
Revises: 5fc0a8b4c765
Create Date: 2026-12-07 10:30:00.000000

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

# revision identifiers, used by Alembic.
revision = '6ad1b9c5d876'
down_revision = '5fc0a8b4c765'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass

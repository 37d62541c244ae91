"""policy results: the (control, status) index carries the asset id too, so "failing control X"
and each control's counts are index-only scans at 1,000,000 assets

Revision ID: 4ebc9a7f3b65
Revises: 3dab8f6e2a54
Create Date: 2026-12-07 07:45:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '4ebc9a7f3b65'
down_revision = '3dab8f6e2a54'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index('ix_policy_results_control_status', table_name='policy_results')
    op.create_index('ix_policy_results_control_status', 'policy_results',
                    ['control_id', 'status', 'asset_id'])


def downgrade():
    op.drop_index('ix_policy_results_control_status', table_name='policy_results')
    op.create_index('ix_policy_results_control_status', 'policy_results', ['control_id', 'status'])

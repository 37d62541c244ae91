"""import_runs.change_set_id: a real import run is a change set (kind `import`) whose id every
audit event of the run carries, so `Undo this import` can reverse it. Null for dry runs and for
runs made before this revision (they cannot be undone as a whole).

Revision ID: f7c3a9e1d2b4
Revises: e6b2d4f8a0c1
Create Date: 2026-12-07 03:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'f7c3a9e1d2b4'
down_revision = 'e6b2d4f8a0c1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('change_set_id', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_import_runs_change_set_id_change_sets'),
                                    'change_sets', ['change_set_id'], ['id'])


def downgrade():
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_import_runs_change_set_id_change_sets'), type_='foreignkey')
        batch_op.drop_column('change_set_id')

"""asset list: the owner filter's index carries owner, name and id, so a filtered page's collection
and its capped count read the index alone

At 1,000,000 assets a median owner's page collected its 2,706 matches through the table, one
heap page each (2,660 pages, 8 of the page's 12 ms of SQL), only to read their names for the
sort. With the name and id in the index the collection is an index-only scan. `owner` is in it
too because PostgreSQL's planner considers an index-only scan only when every column a query
names is in the index, even one it reads only through the indexed expression (`lower(owner)`;
PostgreSQL documentation, "Index-Only Scans and Covering Indexes"). PostgreSQL only, as before.

Revision ID: d7e9f1a3b5c7
Revises: c4f6a8b0d2e3
Create Date: 2026-12-08 00:20:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd7e9f1a3b5c7'
down_revision = 'c4f6a8b0d2e3'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_assets_live_owner")
        op.execute("CREATE INDEX ix_assets_live_owner ON assets (lower(owner) text_pattern_ops) "
                   "INCLUDE (owner, name, id) WHERE deleted_at IS NULL")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_assets_live_owner")
        op.execute("CREATE INDEX ix_assets_live_owner ON assets (lower(owner) text_pattern_ops) "
                   "WHERE deleted_at IS NULL")

"""evidence levels: name-token blocking keys (`tok:<token>`) for every asset, and Cloud SQL
self-links on the old `www.googleapis.com` host keyed like the current `sqladmin` form

No schema change: rows of `asset_identifiers` only. The keys are made by the application's
`webapp.services.identifiers` as it is when the migration runs (the same code the import uses).

Revision ID: 8cf3dbe7fa98
Revises: 7be2cad6e987
Create Date: 2026-12-07 10:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '8cf3dbe7fa98'
down_revision = '7be2cad6e987'
branch_labels = None
depends_on = None


def _tables():
    assets = sa.table("assets", sa.column("id", sa.Uuid()), sa.column("name", sa.String()),
                      sa.column("cloud_resource_id", sa.String()))
    identifiers = sa.table("asset_identifiers", sa.column("key", sa.String()), sa.column("asset_id", sa.Uuid()))
    return assets, identifiers


def upgrade():
    from webapp.services.identifiers import cloud_key, name_tokens

    bind = op.get_bind()
    assets, identifiers = _tables()
    bind.execute(identifiers.delete().where(identifiers.c.key.like("tok:%")))
    rows, old_cloud_keys = [], []
    query = sa.select(assets.c.id, assets.c.name, assets.c.cloud_resource_id)
    # the option on the statement, not the connection: on the connection it would stay, and
    # alembic's own UPDATE of alembic_version would then go through a server-side cursor
    for asset_id, name, cloud in bind.execute(query.execution_options(yield_per=10000)):
        rows += [{"key": f"tok:{token}", "asset_id": asset_id} for token in name_tokens(name)]
        if cloud and "://www.googleapis.com/" in cloud.lower():
            old_cloud_keys.append((f"cloud:{cloud.strip()}", asset_id))
        if len(rows) >= 10000:
            bind.execute(identifiers.insert(), rows)
            rows = []
    if rows:
        bind.execute(identifiers.insert(), rows)
    for key, asset_id in old_cloud_keys:
        bind.execute(identifiers.delete().where(identifiers.c.key == key, identifiers.c.asset_id == asset_id))
        new_key = cloud_key(key.removeprefix("cloud:"))
        exists = bind.execute(sa.select(identifiers.c.key).where(
            identifiers.c.key == new_key, identifiers.c.asset_id == asset_id)).first()
        if exists is None:
            bind.execute(identifiers.insert(), [{"key": new_key, "asset_id": asset_id}])


def downgrade():
    # the canonical Cloud SQL keys stay: they still name the same instances
    _, identifiers = _tables()
    op.get_bind().execute(identifiers.delete().where(identifiers.c.key.like("tok:%")))

"""One asset's History and audit API among 10,000,000 audit events (SPEC §11: p95 <= 1x the
plain /assets page of the same run).

It runs in the audit workload's database, after its events are appended. Two assets are made
there once, with the app's own services: one whose History holds HEAVY_EVENTS events (appended
with `audit.record_many`, the same chain as every other event, each an update of its notes), and
one with its single `create` event. The cases: the History tab (the newest 50), the next older
page of it, the asset's audit API, and the global audit API filtered to the asset.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select

from bench import data, pages

HEAVY_EVENTS = 20_000
HEAVY_NAME = "bench-history-heavy"
LIGHT_NAME = "bench-history-light"
OLDER_LINK = re.compile(r'href="(/assets/[^"]+/history\?before=\d+)"')


def _ensure_assets(app: Any) -> tuple[str, str]:
    """The heavy and the light asset's ids, made (and the heavy one's events appended) once."""
    from webapp.extensions import db
    from webapp.models import Asset, AuditAction, AuditEvent
    from webapp.services import assets, audit
    from webapp.services.actor import Actor

    actor = Actor.cli("bench")
    with app.app_context():
        session = db.session
        ids = {}
        for name in (HEAVY_NAME, LIGHT_NAME):
            found = session.scalar(select(Asset.id).where(Asset.name == name))
            if found is None:
                found = assets.create(session, actor, {"name": name, "engine": "postgresql",
                                                       "environment": "production", "host": f"{name}.example.com",
                                                       "port": 5432}).id
            ids[name] = found
        heavy = ids[HEAVY_NAME]
        have = session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.entity_id == str(heavy))) or 0
        while have < HEAVY_EVENTS:
            n = min(5_000, HEAVY_EVENTS - have)
            audit.record_many(session, actor, [
                audit.Entry(AuditAction.update, "asset", heavy,
                            {"notes": [f"note {have + i - 1}", f"note {have + i}"]}) for i in range(n)])
            session.commit()
            have += n
        db.session.remove()
    return str(heavy), str(ids[LIGHT_NAME])


def run(url: str, plain_p95_ms: float | None, requests: int) -> list[pages.Result]:
    from bench.run import api_token, ensure_admin
    from webapp import create_app

    app = create_app(data.app_config(url))
    ensure_admin(app)
    heavy, light = _ensure_assets(app)
    client = app.test_client()
    pages.sign_in(client, data.ADMIN_EMAIL, data.ADMIN_PASSWORD)
    headers = {"Authorization": f"Bearer {api_token(app)}"}
    older = OLDER_LINK.search(client.get(f"/assets/{heavy}/history").get_data(as_text=True))
    if older is None:
        raise SystemExit("the heavy asset's History offers no older page")
    cases = [
        pages.Case(f"History, {HEAVY_EVENTS:,} events", [f"/assets/{heavy}/history"], prefix="history    ",
                   ratio_target=1.0),
        pages.Case("History, older page", [older.group(1).replace("&amp;", "&")], prefix="history    ",
                   ratio_target=1.0),
        pages.Case("History, 1 event", [f"/assets/{light}/history"], prefix="history    ", ratio_target=1.0),
        pages.Case(f"asset audit API, {HEAVY_EVENTS:,}", [f"/api/v1/assets/{heavy}/audit?limit=50"],
                   prefix="audit API  ", ratio_target=1.0, headers=headers),
        pages.Case("audit API by entity", ["/api/v1/audit?" + urlencode({"entity_id": heavy, "limit": 50})],
                   prefix="audit API  ", ratio_target=1.0, headers=headers),
    ]
    pages.warm_up(client, cases, rounds=2)
    results = []
    for case in cases:
        result = pages.run_case(app, client, case, requests)
        result.floor_ms = plain_p95_ms
        results.append(result)
        print(result.line(), flush=True)
    with app.app_context():
        from webapp.extensions import db

        db.session.remove()
        db.engine.dispose()
    return results

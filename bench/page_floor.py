"""The floor of the 50-client `/assets` workload: a bare Flask + Jinja page, no product code.

    BENCH_DATABASE_URL=... gunicorn -c python:webapp.gunicorn_conf bench.page_floor:app

One SQL statement for the same 50 rows the plain `/assets` page shows (name order, live assets),
with the same columns (name, tags, engine and version, host:port, environment, status,
criticality, owner, updated), rendered into a plain table with a link per row. No sign-in, no
layout, no ORM: the least this machine can do to serve that answer. `bench/concurrency.py`
serves it with the same gunicorn settings as the product and drives it with the same wrk.
"""

from __future__ import annotations

import os

import psycopg
from flask import Flask

from bench import data

ROWS = 50
QUERY = """
SELECT a.id, a.name, a.engine, a.engine_version, a.host, a.port, a.environment, a.status,
       a.criticality, a.owner, a.updated_at,
       ARRAY(SELECT t.name FROM asset_tags at JOIN tags t ON t.id = at.tag_id
             WHERE at.asset_id = a.id ORDER BY t.name) AS tags
FROM assets a
WHERE a.deleted_at IS NULL
ORDER BY a.name, a.id
LIMIT %s
"""
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Assets</title></head>
<body><h1>Assets</h1>
<table>
<thead><tr><th>Name</th><th>Engine</th><th>Host</th><th>Environment</th><th>Status</th>
<th>Criticality</th><th>Owner</th><th>Updated</th></tr></thead>
<tbody>
{% for r in rows %}<tr>
<td><a href="/assets/{{ r[0] }}">{{ r[1] }}</a>{% for t in r[11] %} <span>{{ t }}</span>{% endfor %}</td>
<td>{{ r[2] }} {{ r[3] or '' }}</td>
<td>{{ r[4] or '' }}{% if r[5] %}:{{ r[5] }}{% endif %}</td>
<td>{{ r[6] }}</td><td>{{ r[7] }}</td><td>{{ r[8] or '' }}</td><td>{{ r[9] or '' }}</td>
<td>{{ r[10].strftime('%Y-%m-%d') }}</td>
</tr>{% endfor %}
</tbody></table></body></html>
"""

app = Flask(__name__)
TEMPLATE = app.jinja_env.from_string(PAGE)  # compiled once, as Flask caches a file template
_connection: psycopg.Connection | None = None  # one per worker process (sync workers: one thread)


def _conn() -> psycopg.Connection:
    global _connection
    if _connection is None or _connection.closed:
        url = os.environ.get("BENCH_DATABASE_URL") or data.DEFAULT_URL
        _connection = psycopg.connect(data.conninfo(url), autocommit=True)
    return _connection


@app.get("/")
def assets() -> str:
    rows = _conn().execute(QUERY, (ROWS,)).fetchall()
    return TEMPLATE.render(rows=rows)

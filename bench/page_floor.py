"""The floor of the 50-client `/assets` workload: a bare Flask + Jinja page, no product code.

    BENCH_DATABASE_URL=... gunicorn -c python:webapp.gunicorn_conf bench.page_floor:app

One SQL statement for the same 50 rows the plain `/assets` page shows (name order, live assets),
with the same columns (name, tags, engine and version, host:port, environment, status,
criticality, owner, updated), rendered into a plain table with a link per row. No sign-in, no
layout, no ORM: the least this machine can do to serve that answer. `bench/concurrency.py`
serves it with the same gunicorn settings as the product and drives it with the same wrk.

BENCH_DATABASE_URL may name PostgreSQL (psycopg) or a SQLite file (the embedded default's
case: sqlite3, the tags joined in the statement and split here, the timestamp parsed). One
connection per serving thread.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import datetime
from typing import Any

import psycopg
from flask import Flask
from sqlalchemy.engine import make_url

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
# `+` keeps SQLite's planner off ix_assets_deleted_at, which it takes for `IS NULL` (it cannot
# know that nearly every row is live) and then sorts every live row: the floor walks
# ix_assets_name_id instead, the least this answer costs (~0.5 ms instead of ~150 ms at 100,000)
SQLITE_QUERY = """
SELECT a.id, a.name, a.engine, a.engine_version, a.host, a.port, a.environment, a.status,
       a.criticality, a.owner, a.updated_at,
       (SELECT group_concat(name, char(31)) FROM (
            SELECT t.name AS name FROM asset_tags at JOIN tags t ON t.id = at.tag_id
            WHERE at.asset_id = a.id ORDER BY t.name)) AS tags
FROM assets a
WHERE +a.deleted_at IS NULL
ORDER BY a.name, a.id
LIMIT ?
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
URL = os.environ.get("BENCH_DATABASE_URL") or data.DEFAULT_URL
_local = threading.local()  # this thread's connection


def _postgresql_rows() -> list[Any]:
    connection = getattr(_local, "connection", None)
    if connection is None or connection.closed:
        connection = _local.connection = psycopg.connect(data.conninfo(URL), autocommit=True)
    return connection.execute(QUERY, (ROWS,)).fetchall()


def _sqlite_rows() -> list[Any]:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = sqlite3.connect(make_url(URL).database)
    return [(*r[:10], datetime.fromisoformat(r[10]), r[11].split("\x1f") if r[11] else [])
            for r in connection.execute(SQLITE_QUERY, (ROWS,))]


_rows = _sqlite_rows if URL.startswith("sqlite") else _postgresql_rows


@app.get("/")
def assets() -> str:
    return TEMPLATE.render(rows=_rows())

"""Observations (SPEC §6): the last value each source reported for each field of an asset,
whether or not it won, and when two reported values are the same after normalisation.

Imports write them in bulk, one statement per batch (`report`); a person's edit writes the
fields it changed as source `manual`. The asset's Sources tab reads them (`asset_sources`).

A row's run (or person) and `seen_at` say since when the source has reported the value it holds:
a report of the same value again leaves the row as it is. That keeps a re-import as cheap as
its outcome rows (an unchanged row is neither rewritten nor re-indexed); when the source last
saw the asset at all is its sighting (the import records).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Uuid, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from webapp.models import Observation
from webapp.models.base import JSONType
from webapp.services import audit, bulk, identifiers

TABLE = Observation.__table__
KEY = ["asset_id", "field", "source"]
# fields never kept as observations: the secret, and what describes the record rather than the
# database (`source` is the observation's own column; `confidence` is the matcher's)
NOT_OBSERVED = frozenset({"connection_string", "source", "confidence"})
IN_CHUNK = 5000
SMALL = 100  # reports up to this many rows are one VALUES statement (no scratch table)

# the batch's reports are COPYed into a scratch table, then upserted by one statement (an
# unnest of three array parameters cost ~40 % more, measured)
SCRATCH = Table("observations_in", MetaData(), Column("asset_id", Uuid()), Column("field", String(64)),
                Column("value", JSONType))
_SCRATCH_PG = text(
    "CREATE TEMPORARY TABLE observations_in (asset_id uuid, field varchar(64), value jsonb) ON COMMIT DROP")
_UPSERT_PG = text(
    "INSERT INTO observations (asset_id, field, source, import_run_id, reported_by, value, seen_at) "
    "SELECT t.asset_id, t.field, :source, :run, :person, t.value, :seen FROM observations_in t "
    "ON CONFLICT (asset_id, field, source) DO UPDATE SET import_run_id = excluded.import_run_id, "
    "reported_by = excluded.reported_by, value = excluded.value, seen_at = excluded.seen_at "
    "WHERE observations.value IS DISTINCT FROM excluded.value"
)


def report(
    session: Session,
    values: Mapping[tuple[uuid.UUID, str], Any],
    *,
    source: str,
    seen_at: datetime,
    import_run_id: uuid.UUID | None = None,
    reported_by: uuid.UUID | None = None,
    new_assets: Collection[uuid.UUID] = (),
) -> None:
    """Keep what `source` reported: `values` maps (asset id, field) to the JSON value. One
    multi-row `INSERT … ON CONFLICT DO UPDATE` (on PostgreSQL from a scratch table the rows
    are COPYed into, so the statement and its plan stay the same whatever the batch's size),
    in the caller's transaction; a row whose value is the same stays as it is (see the
    module's docstring). The rows of `new_assets` (created in this transaction: nothing can
    be stored for them yet) are written straight, without the upsert."""
    if new_assets and values:
        fresh = [
            {"asset_id": asset_id, "field": name, "source": source, "import_run_id": import_run_id,
             "reported_by": reported_by, "value": value, "seen_at": seen_at}
            for (asset_id, name), value in values.items() if asset_id in new_assets
        ]
        if fresh:
            bulk.insert_rows(session, TABLE, fresh)  # COPY on PostgreSQL
            values = {k: v for k, v in values.items() if k[0] not in new_assets}
    if not values:
        return
    if bulk.is_postgresql(session) and len(values) > SMALL:
        session.execute(_SCRATCH_PG)
        bulk.insert_rows(session, SCRATCH, [{"asset_id": a, "field": f, "value": v} for (a, f), v in values.items()])
        session.execute(_UPSERT_PG, {"source": source, "run": import_run_id, "person": reported_by, "seen": seen_at})
        session.execute(text("DROP TABLE observations_in"))
        return
    rows = [
        {"asset_id": asset_id, "field": name, "source": source, "import_run_id": import_run_id,
         "reported_by": reported_by, "value": value, "seen_at": seen_at}
        for (asset_id, name), value in values.items()
    ]
    small = len(rows) <= SMALL  # a person's edit: one multi-row VALUES statement
    statement = (postgresql.insert if bulk.is_postgresql(session) else sqlite.insert)(TABLE)
    if small:
        statement = statement.values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=KEY,
        set_={c: statement.excluded[c] for c in ("import_run_id", "reported_by", "value", "seen_at")},
        where=TABLE.c.value.is_distinct_from(statement.excluded.value),
    )
    if small:
        session.execute(statement)
    else:
        session.execute(statement, rows)


def observable(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a record (or of a person's change) worth keeping, as JSON values."""
    return {
        name: audit.jsonable(value) for name, value in fields.items()
        if name not in NOT_OBSERVED and value is not None
    }


def record_manual(
    session: Session, user_id: uuid.UUID | None, asset_id: uuid.UUID, changed: Mapping[str, Any],
    seen_at: datetime,
) -> None:
    """A person set these fields by hand (`changed`: field → new value): source `manual`.
    A field a person cleared is no report: the observation the person made before stays."""
    report(session, {(asset_id, f): v for f, v in observable(changed).items()},
           source="manual", seen_at=seen_at, reported_by=user_id)


def reported(
    session: Session, source: str, wanted: Mapping[uuid.UUID, Collection[str]]
) -> dict[uuid.UUID, dict[str, Any]]:
    """What `source` last reported of these assets' fields ({asset: {field: value}}; `wanted`:
    {asset: the fields asked for})."""
    ids = list(wanted)
    found: dict[uuid.UUID, dict[str, Any]] = {}
    for start in range(0, len(ids), IN_CHUNK):
        rows = session.execute(
            select(TABLE.c.asset_id, TABLE.c.field, TABLE.c.value).where(
                TABLE.c.source == source, bulk.among(session, TABLE.c.asset_id, ids[start : start + IN_CHUNK]))
        )
        for asset_id, name, value in rows:
            if name in wanted[asset_id]:
                found.setdefault(asset_id, {})[name] = value
    return found


def fields_written_in_run(session: Session, run_id: uuid.UUID) -> dict[uuid.UUID, set[str]]:
    """The fields whose values a run has written so far, per asset (a resumed run picks up
    from there; fields it reported unchanged are not known)."""
    found: dict[uuid.UUID, set[str]] = {}
    for asset_id, name in session.execute(
        select(TABLE.c.asset_id, TABLE.c.field).where(TABLE.c.import_run_id == run_id)
    ):
        found.setdefault(asset_id, set()).add(name)
    return found


# --- equal after normalisation ----------------------------------------------------------------

# SQL Server's marketing years and the major versions they ship (`2022` is `16.0.x`)
MSSQL_YEARS = {"2008": "10", "2012": "11", "2014": "12", "2016": "13", "2017": "14", "2019": "15",
               "2022": "16", "2025": "17"}
HOST_FIELDS = frozenset({"host"})
CASELESS_FIELDS = frozenset({"name", "region", "database_name"})


def equivalent(name: str, a: Any, b: Any) -> bool:
    """Whether two values of field `name` say the same thing, spelled differently: an owner
    `team` and the mailbox `team@domain`, a host name's case and trailing dot, a version and
    a vendor's longer spelling of it (`8.0` / `8.0.36-log`, `16` / `POSTGRES_16_2`, SQL Server
    `2022` / `16.0.1000`), names and regions in another case. Anything else compares as
    JSON."""
    a, b = audit.jsonable(a), audit.jsonable(b)
    if a == b:
        return True
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    if name in HOST_FIELDS:
        return identifiers.host_form(a) == identifiers.host_form(b)
    if name == "owner":
        return same_owner(a, b)
    if name == "engine_version":
        return same_version(a, b)
    if name in CASELESS_FIELDS:
        return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()
    return False


def same_owner(a: str, b: str) -> bool:
    """`dba-team` and `dba-team@example.com` name one owner (the mailbox's local part is the
    team); two mailboxes or two team names must be equal (case aside)."""
    a, b = a.strip().casefold(), b.strip().casefold()
    if ("@" in a) == ("@" in b):
        return a == b
    mailbox, team = (a, b) if "@" in a else (b, a)
    return mailbox.split("@", 1)[0] == team


_NUMBERS = re.compile(r"\d+")


def version_numbers(value: str) -> list[str]:
    """A version's numbers in order, leading zeros dropped (`POSTGRES_16_2` → 16, 2); a SQL
    Server year becomes its major version."""
    numbers = [n.lstrip("0") or "0" for n in _NUMBERS.findall(value)]
    if numbers and numbers[0] in MSSQL_YEARS:
        numbers = [MSSQL_YEARS[numbers[0]]]
    return numbers


def same_version(a: str, b: str) -> bool:
    """One version's numbers are the start of the other's (`8.0` / `8.0.36-log`)."""
    x, y = version_numbers(a), version_numbers(b)
    if not x or not y:
        return False
    shorter, longer = (x, y) if len(x) <= len(y) else (y, x)
    return longer[: len(shorter)] == shorter

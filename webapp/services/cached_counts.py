"""Figures that cost a scan at 1,000,000 assets, kept briefly in a cache and dropped by the
commits that change them: the dashboard's counts, each control's results by status (the
dashboard and `/policy`) and the review queue's open count (every page's navigation).

    counts = cached_counts.read("policy_counts", ("policy_results",), compute)

The cache is Flask-Caching's: Redis when REDIS_URL is set (shared by every app server and
worker), else in-process (the embedded default: one process, whose job threads use the same
cache). COUNTS_CACHE_SECONDS bounds how long a figure is reused (time passes too: assets turn
stale); 0 turns the cache off.

How a write reaches the cache
-----------------------------
Each watched table has a *generation*: a random token in the cache. A session records which
watched tables its transaction wrote: the ORM objects it flushed, the INSERT, UPDATE and DELETE
statements it executed (Core or text), and the COPYs services make through the driver (they
call `wrote`). A DELETE also counts for the tables whose rows it deletes or changes by a
foreign key's ON DELETE (purging an asset deletes its results and review items). When the
transaction commits, those tables get new generations, before the request that wrote answers:
whoever edits an asset and opens the dashboard next sees the new counts. A savepoint's
commit waits for its transaction's; a rolled-back transaction bumps nothing.

A figure is stored with the generations it was computed under and is used only while they are
all still current: one round trip (MGET) reads both. A reader that computed from data older
than a commit stores it under the generations it read before that commit's bump, so the next
reader recomputes. Writes this cannot see (SQL run outside the app; another process on the
in-process cache) show within COUNTS_CACHE_SECONDS.

When the cache server fails, figures are computed from the database (the pages work without
Redis) and the cache is skipped for a while; the first access after that drops every figure,
as commits meanwhile could not bump their generations.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask, current_app, has_app_context
from flask_caching import Cache
from sqlalchemy import TextClause, event
from sqlalchemy.orm import ORMExecuteState, Session

from webapp.config import counts_cache
from webapp.models.base import Base

log = logging.getLogger(__name__)

T = TypeVar("T")
# the tables whose writes change a cached figure (what `read` callers depend on)
WATCHED = frozenset({"assets", "asset_tags", "policy_results", "conflicts", "notifications"})
CHANGED = "cached_counts_changed"  # session.info: watched tables this transaction wrote
GENERATION = "generation:"
FIGURE = "figure:v1:"  # the version: a deploy that changes a figure's shape starts afresh
PAUSE_SECONDS = 30.0  # after a cache server error, figures come from the database this long
STATE = "cached_counts"  # app.extensions: this app's cache health
WRITE = re.compile(r'\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.IGNORECASE)

cache = Cache()  # unbound: each app gets its own backend (`init_app`)


def init_app(app: Flask) -> None:
    """Give the app its counts cache, as its final config says (no connection is made here)."""
    cache.init_app(app, config=counts_cache(app.config))


# --- reading ----------------------------------------------------------------------------------

def read(name: str, tables: Iterable[str], compute: Callable[[], T], *,
         session: Session | None = None) -> T:
    """The figure `name`: from the cache while no commit has written `tables` since it was
    computed (and for at most COUNTS_CACHE_SECONDS), else `compute()`, then stored. The value
    must pickle (plain data: numbers, strings, lists, dicts, tuples). `session`: the session
    `compute` reads with; when its open transaction has written any of `tables`, the figure is
    computed (it sees those writes) and not stored."""
    tables = sorted(tables)
    if session is not None and session.info.get(CHANGED, set()).intersection(tables):
        return compute()
    backend = _backend()
    if backend is None:
        return compute()
    keys = [GENERATION + t for t in tables]
    try:
        *found, stored = backend.get_many(*keys, FIGURE + name)
        generations = tuple(found)
        if None in generations:  # first use, or evicted: a generation no figure was stored under
            for key, value in zip(keys, generations, strict=True):
                if value is None:
                    backend.add(key, uuid.uuid4().hex, timeout=0)
            generations = tuple(backend.get_many(*keys))
        elif isinstance(stored, tuple) and len(stored) == 2 and stored[0] == generations:
            return stored[1]  # type: ignore[no-any-return]
    except Exception:
        _failed("reading")
        return compute()
    value = compute()
    try:
        backend.set(FIGURE + name, (generations, value), timeout=current_app.config["COUNTS_CACHE_SECONDS"])
    except Exception:
        _failed("storing")
    return value


def invalidate(tables: Iterable[str] = WATCHED) -> None:
    """New generations for these tables: every figure computed from them is recomputed on its
    next read. The commits of the app's sessions call this; so may whatever writes behind
    them."""
    backend = _backend()
    if backend is not None:
        _new_generations(backend, tables)


def _backend() -> Any:
    """This app's cache, or None: no app, the cache turned off, or paused after an error."""
    if not has_app_context() or current_app.config.get("COUNTS_CACHE_SECONDS", 0) <= 0:
        return None
    backend = current_app.extensions.get("cache", {}).get(cache)
    state = _state()
    if backend is None or time.monotonic() < state["paused_until"]:
        return None
    if state["missed"]:  # back after a failure: what commits meanwhile could not bump
        state["missed"] = False
        if not _new_generations(backend, WATCHED):
            return None
    return backend


def _new_generations(backend: Any, tables: Iterable[str]) -> bool:
    try:
        backend.set_many({GENERATION + t: uuid.uuid4().hex for t in tables}, timeout=0)
        return True
    except Exception:
        _failed("invalidating")
        return False


def _state() -> dict[str, Any]:
    return current_app.extensions.setdefault(STATE, {"paused_until": 0.0, "missed": False})  # type: ignore[no-any-return]


def _failed(doing: str) -> None:
    state = _state()
    state["paused_until"] = time.monotonic() + PAUSE_SECONDS
    state["missed"] = True
    log.warning("the counts cache failed %s: figures come from the database for %.0f s",
                doing, PAUSE_SECONDS, exc_info=True)


# --- what a transaction wrote -----------------------------------------------------------------

_cascades: dict[str, frozenset[str]] | None = None


def _deleting(table: str) -> frozenset[str]:
    """The table and those a DELETE on it changes by a foreign key's ON DELETE (CASCADE or SET
    NULL), transitively."""
    global _cascades
    if _cascades is None:
        direct: dict[str, set[str]] = {}
        for child in Base.metadata.tables.values():
            for fk in child.foreign_keys:
                if (fk.ondelete or "").upper() in ("CASCADE", "SET NULL"):
                    direct.setdefault(fk.column.table.name, set()).add(child.name)
        reached_from: dict[str, frozenset[str]] = {}
        for parent in direct:
            reached, todo = {parent}, [parent]
            while todo:
                for child in direct.get(todo.pop(), ()):
                    if child not in reached:
                        reached.add(child)
                        todo.append(child)
            reached_from[parent] = frozenset(reached)
        _cascades = reached_from  # whole, at once: another thread sees all of it or none
    return _cascades.get(table, frozenset({table}))


def wrote(session: Session, table: str, *, deleting: bool = False) -> None:
    """Record that this transaction wrote `table` (for writes the session's events do not see:
    COPY through the driver)."""
    tables = _deleting(table) if deleting else (table,)
    changed = WATCHED.intersection(tables)
    if changed:
        session.info.setdefault(CHANGED, set()).update(changed)


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _flush_context: Any) -> None:
    for objects, deleting in ((session.new, False), (session.dirty, False), (session.deleted, True)):
        for obj in objects:
            table = getattr(obj, "__table__", None)
            if table is not None:
                wrote(session, table.name, deleting=deleting)


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    statement = state.statement
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(statement, "table", None)
        if table is not None and getattr(table, "name", None):
            wrote(state.session, table.name, deleting=state.is_delete)
    elif isinstance(statement, TextClause):
        match = WRITE.match(statement.text)
        if match:
            wrote(state.session, match.group(2).lower(), deleting=match.group(1).upper().startswith("DELETE"))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint: its transaction has not committed yet
        return
    changed = session.info.pop(CHANGED, None)
    if changed:
        invalidate(changed)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    # a savepoint's rollback keeps what the transaction wrote before it (one more bump is harmless)
    if not session.in_nested_transaction():
        session.info.pop(CHANGED, None)

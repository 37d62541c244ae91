"""The engine end-of-life table (webapp/policy/data/engine_eol.json) and version matching.

The table is data shipped with the code: one row per engine release cycle with the date its
vendor's standard support ends (null: none announced), plus where the dates come from and when
the table was compiled. Refreshing it is editing that file; `tests/unit/test_policy_eol.py`
checks its shape.

Matching a version string to a cycle (`lookup`):

* an alias of a cycle found in the text as a word wins (`SQL Server 2019 …` -> mssql 15,
  `19c` -> oracle 19, `23ai` -> oracle 23);
* otherwise the first run of numbers is the version (`8.0.36-0ubuntu…` -> 8.0.36), and the cycle
  whose numbers are its longest prefix matches (`mysql 8.0`, `postgresql 16`,
  `elasticsearch 7`). MariaDB's `5.5.5-` compatibility prefix is skipped;
* a version that is a prefix of several cycles (`mysql 8`, `oracle 12`) is ambiguous: end of life
  only if every one of them has ended;
* a version the table does not list, older than a listed cycle of the same major version (or
  older than the engine's oldest cycle) whose support has ended, has ended too
  (`elasticsearch 8.11`, older than 8.16);
* anything else is not in the table: unknown.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).parent / "data" / "engine_eol.json"


@dataclass(frozen=True)
class Cycle:
    engine: str
    cycle: str
    numbers: tuple[int, ...]
    eol: date | None
    released: date | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class EolTable:
    compiled_at: date
    source: dict[str, Any]
    cycles: dict[str, tuple[Cycle, ...]]  # engine -> cycles, newest first
    alias_patterns: dict[str, tuple[tuple[re.Pattern[str], Cycle], ...]]


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def parse_table(raw: dict[str, Any]) -> EolTable:
    """The table from its JSON form; ValueError on a malformed row."""
    by_engine: dict[str, list[Cycle]] = {}
    for i, row in enumerate(raw["cycles"]):
        try:
            engine, cycle = row["engine"], row["cycle"]
            eol = row["eol"]  # the key must be there; null means no end announced
            released = row.get("released")
            entry = Cycle(
                engine=engine,
                cycle=cycle,
                numbers=_numbers(cycle),
                eol=None if eol is None else date.fromisoformat(eol),
                released=None if released is None else date.fromisoformat(released),
                aliases=tuple(a.lower() for a in row.get("aliases", ())),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"engine EOL table, row {i + 1}: {exc!r}") from exc
        by_engine.setdefault(engine, []).append(entry)
    cycles = {
        engine: tuple(sorted(rows, key=lambda c: c.numbers, reverse=True))
        for engine, rows in by_engine.items()
    }
    aliases = {
        engine: tuple(
            sorted(
                (
                    (re.compile(rf"(?<![\w.]){re.escape(alias)}(?![\w.])"), cycle)
                    for cycle in rows
                    for alias in cycle.aliases
                ),
                key=lambda pair: -len(pair[0].pattern),  # "2008 r2" before "2008"
            )
        )
        for engine, rows in cycles.items()
    }
    return EolTable(
        compiled_at=date.fromisoformat(raw["compiled_at"]),
        source=raw["source"],
        cycles=cycles,
        alias_patterns=aliases,
    )


@cache
def table() -> EolTable:
    with DATA_FILE.open(encoding="utf-8") as fh:
        return parse_table(json.load(fh))


@dataclass(frozen=True)
class Lookup:
    """What the table says of one (engine, version). `cycle` matched; or `candidates` (the
    version is ambiguous between them); or `older_than` (an ended cycle newer than the version,
    so the version has ended too); or none of them (not in the table)."""

    version: str  # the number (or alias) read from the text
    cycle: Cycle | None = None
    candidates: tuple[Cycle, ...] = ()
    older_than: Cycle | None = None


_NUMBER = re.compile(r"\d+(?:\.\d+)*")


@lru_cache(maxsize=8192)
def lookup(engine: str, version: str, today: date) -> Lookup | None:
    """Match `version` of `engine` against the table. None when no number can be read from the
    text. Cached: a million assets share a few hundred distinct versions."""
    eol = table()
    text = version.strip().lower()
    for pattern, cycle in eol.alias_patterns.get(engine, ()):
        if pattern.search(text):
            return Lookup(version=cycle.cycle, cycle=cycle)
    if engine == "mariadb" and text.startswith("5.5.5-"):
        text = text[len("5.5.5-") :]
    found = _NUMBER.search(text)
    if found is None:
        return None
    numbers = _numbers(found.group())
    shown = found.group()
    rows = eol.cycles.get(engine, ())
    best: Cycle | None = None
    for cycle in rows:
        if numbers[: len(cycle.numbers)] == cycle.numbers and (
            best is None or len(cycle.numbers) > len(best.numbers)
        ):
            best = cycle
    if best is not None:
        return Lookup(version=shown, cycle=best)
    longer = tuple(c for c in rows if c.numbers[: len(numbers)] == numbers)
    if longer:
        return Lookup(version=shown, candidates=longer)
    oldest = rows[-1] if rows else None
    ended = [
        c
        for c in rows
        if c.numbers > numbers
        and (c.numbers[0] == numbers[0] or c is oldest)
        and c.eol is not None
        and c.eol <= today
    ]
    if ended:
        return Lookup(version=shown, older_than=min(ended, key=lambda c: c.numbers))
    return Lookup(version=shown)

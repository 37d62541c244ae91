"""Helpers for the discovery parser tests: they need no app, no database and no network."""

from __future__ import annotations

from pathlib import Path

from webapp.discovery import DiscoveredRecord, ParseResult, parse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "discovery"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse_fixture(name: str, format: str | None = None) -> ParseResult:
    return parse(fixture_bytes(name), filename=name, format=format)


def by_key(result: ParseResult) -> dict[str, DiscoveredRecord]:
    return {record.key: record for record in result.records}

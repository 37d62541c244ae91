"""`inventory-json`: the product's own exchange format (SPEC §6, format 1).

`{"source": str, "generated_at": iso8601, "assets": [{asset fields…, "confidence": 0–1}]}`,
or a bare list of asset objects, or JSON Lines of asset objects (the inventory's own JSON export:
`Content.json` reads them as a list; a one-line file is a lone object with `name` and `engine`).
Keys are the SPEC §3 field names as the API spells them.

`version` is ambiguous in the spec (engine version and the optimistic-locking counter): when an
object also has `engine_version`, or `version` is an integer, it is taken to be the counter (as
in an export of `/api/v1/assets`) and ignored; otherwise it is the engine version. The app's
bookkeeping keys (`id`, `created_at`, …) are ignored silently, so an API export re-imports
cleanly; other unknown keys are reported once per file. A per-asset `source` is ignored (the
upload's source label applies to the whole file). JSON `null` means "unknown", like a missing
key. Values go through the same normalisation as CSV cells (`"PostgreSQL"` -> `postgresql`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from webapp.discovery import normalise
from webapp.discovery.base import (
    Content,
    DiscoveredRecord,
    DiscoveryError,
    Format,
    ParseResult,
    Warnings,
    build_record,
    register,
)
from webapp.discovery.fields import BOOKKEEPING, FIELD_NAMES, RecordBuilder

NAME = "inventory-json"
_ASSET_HINTS = frozenset({"name", "engine", "host", "database_name", "engine_version"})


def detect(content: Content) -> int:
    if content.kind != "json":
        return 0
    doc = content.json
    if isinstance(doc, dict):
        if isinstance(doc.get("assets"), list):
            return 100
        return 40 if _is_lone_asset(doc) else 0
    if isinstance(doc, list):
        if not doc:
            return 10
        sample = doc[:5]
        if all(isinstance(item, dict) for item in sample) and any(
            _ASSET_HINTS & item.keys() for item in sample
        ):
            return 50
    return 0


def parse(content: Content) -> ParseResult:
    doc = content.json
    warnings = Warnings()
    source = generated_at = None
    if isinstance(doc, dict) and _is_lone_asset(doc):
        assets = [doc]
    elif isinstance(doc, dict):
        assets = doc.get("assets")
        if not isinstance(assets, list):
            raise DiscoveryError(
                'Expected an object with an "assets" list, or a list of asset objects.'
            )
        raw_source = doc.get("source")
        if isinstance(raw_source, str) and raw_source.strip():
            source = raw_source.strip()[:100]
        elif raw_source is not None:
            warnings.add('"source" is not text; ignored.')
        raw_generated = doc.get("generated_at")
        if raw_generated is not None:
            parsed = normalise.timestamp(raw_generated) if isinstance(raw_generated, str) else None
            if parsed is None:
                warnings.add(f'"generated_at" {raw_generated!r} is not an ISO 8601 date; ignored.')
            else:
                generated_at = parsed[0]
    elif isinstance(doc, list):
        assets = doc
    else:
        raise DiscoveryError(
            'Expected an object with an "assets" list, or a list of asset objects.'
        )

    unknown: Counter[str] = Counter()
    records = [_record(n, item, unknown) for n, item in enumerate(assets, start=1)]
    if unknown:
        listed = ", ".join(f"{k} ({c}×)" if c > 1 else k for k, c in unknown.most_common(20))
        warnings.add(f"Keys not recognised, ignored: {listed}.")
    if not records:
        warnings.add("The file lists no assets.")
    return ParseResult(
        format=NAME,
        records=records,
        warnings=warnings.finish(),
        source=source,
        generated_at=generated_at,
    )


def _is_lone_asset(doc: dict[str, Any]) -> bool:
    """One asset object on its own (a one-line export): no "assets" list, a name and an engine."""
    return "assets" not in doc and "name" in doc and "engine" in doc


def _record(n: int, item: Any, unknown: Counter[str]) -> DiscoveredRecord:
    key = f"json:{n}"
    if not isinstance(item, dict):
        return DiscoveredRecord.unusable(key, n, f"Asset {n} is not a JSON object.")
    return build_record(key, n, RecordBuilder(), _fill, item, unknown)


def _fill(builder: RecordBuilder, item: dict[str, Any], unknown: Counter[str]) -> None:
    for name, value in item.items():
        if name in FIELD_NAMES:
            builder.set(name, value)
        elif name == "version":
            if "engine_version" not in item and not (
                isinstance(value, int) and not isinstance(value, bool)
            ):
                builder.set("engine_version", value)
        elif name not in BOOKKEEPING and name != "source":
            unknown[name] += 1


register(
    Format(
        name=NAME,
        description='The inventory\'s own JSON: {"source", "generated_at", "assets": [...]} or a list',
        detect=detect,
        parse=parse,
        extensions=("json",),
    )
)

"""`csv`: a spreadsheet or CMDB export with a header row (SPEC §6, format 2).

What real exports look like, and what this parser does about it:

* Headers are matched case-insensitively, ignoring spaces, hyphens and dots, against the asset
  field names and the aliases CMDB exports use (`hostname`, `db`, `env`, `dbms`, `team`…).
  Unknown columns are reported once, as a file warning. `metadata.<key>` columns fill the
  metadata object. When several columns map to one field, the first non-empty one (in header
  order) wins, except for the host: further host-like columns (`hostname` next to
  `ip_address`) become aliases, since both name the same server.
* Encoding: UTF-8 with or without BOM, UTF-16 with BOM, and when the bytes are not UTF-8,
  Windows-1252/Latin-1 (what Excel on Windows writes) with a file warning.
* Delimiter: `,`, `;` or tab, chosen by counting them on the header line outside quotes; an
  Excel `sep=;` first line is honoured. CRLF and quoted multi-line cells are handled by the csv
  module; a quoted multi-line cell is still one record.
* Record keys are `csv:<n>`, n the 1-based data row (header not counted). Blank rows produce
  no record but keep their number, so `csv:7` stays row 7 of the data whatever surrounds it.
* Cells are stored verbatim apart from surrounding whitespace: a cell starting with `=`, `+`,
  `-` or `@` is data here; neutralising formulas is the export's job (SPEC §9).
"""

from __future__ import annotations

import csv
import io
from typing import Any

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
from webapp.discovery.fields import FIELD_NAMES, RecordBuilder

NAME = "csv"

_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("asset", "asset_name", "display_name", "instance_name", "db_instance", "ci_name"),
    "engine": (
        "dbms",
        "type",
        "db_type",
        "database_type",
        "engine_type",
        "rdbms",
        "database_engine",
        "db_engine",
        "technology",
    ),
    "engine_version": ("version", "db_version", "dbms_version", "database_version", "engine_ver"),
    # order matters: the first host-like column present is the host, the others aliases
    "host": (
        "hostname",
        "host_name",
        "fqdn",
        "server",
        "server_name",
        "dns_name",
        "endpoint",
        "address",
        "ip_address",
        "ip",
    ),
    "port": ("tcp_port", "db_port", "listener_port"),
    "database_name": ("database", "db", "db_name", "dbname", "schema_name"),
    "aliases": ("alias", "other_names", "cnames", "dns_aliases", "alternate_names"),
    "cloud_provider": ("cloud", "provider", "hosting"),
    "region": ("cloud_region",),
    "cloud_resource_id": ("resource_id", "arn", "self_link", "selflink", "azure_id", "cloud_id"),
    "environment": ("env", "stage", "environment_name"),
    "status": ("state", "lifecycle_status", "operational_status", "lifecycle"),
    "owner": (
        "owner_email",
        "owner_name",
        "team",
        "owned_by",
        "managed_by",
        "support_group",
        "contact",
        "owner_team",
    ),
    "criticality": ("business_criticality", "crit", "importance"),
    "data_classification": ("classification", "data_class", "sensitivity", "data_sensitivity"),
    "encrypted_at_rest": ("encrypted", "encryption", "storage_encrypted", "encryption_at_rest"),
    "tls_required": ("tls", "ssl", "ssl_required", "require_ssl", "ssl_enforcement"),
    "publicly_accessible": ("public", "internet_facing", "public_access"),
    "backup_retention_days": ("backup_retention", "retention_days", "backup_retention_period"),
    "last_backup_at": ("last_backup", "last_backup_time", "backup_date"),
    "deletion_protection": (),
    "connection_string": ("dsn", "jdbc_url", "connection_url", "conn_string"),
    "tags": ("tag", "labels"),
    "metadata": (),
    "notes": ("description", "comments", "comment", "remarks"),
    "confidence": (),
}


def _header_key(header: str) -> str:
    return "".join(ch for ch in header.strip().lower() if ch.isalnum())


HEADERS: dict[str, str] = {}
for _field, _names in _ALIASES.items():
    for _name in (_field, *_names):
        HEADERS.setdefault(_header_key(_name), _field)
assert set(HEADERS.values()) == FIELD_NAMES, "every asset field has a CSV column"

# columns that identify a row well enough to call the file an asset CSV
_IDENTIFYING = frozenset({"name", "host", "engine", "database_name", "cloud_resource_id"})
_DELIMITERS = (",", ";", "\t")


def _first_line(text: str) -> str:
    """The first physical line (a header never holds quoted newlines in practice)."""
    end = len(text)
    for sep in ("\n", "\r"):
        pos = text.find(sep, 0, 65536)
        if pos != -1:
            end = min(end, pos)
    return text[: min(end, 65536)]


def _count_outside_quotes(line: str, char: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == char and not quoted:
            count += 1
    return count


def _dialect(text: str) -> tuple[str, int]:
    """(delimiter, characters to skip before the header)."""
    line = _first_line(text)
    if line.lower().startswith("sep=") and len(line.strip()) == 5:
        skip = len(line)
        rest = text[skip:]
        skip += len(rest) - len(rest.lstrip("\r\n"))
        return line.strip()[4], skip
    counts = {d: _count_outside_quotes(line, d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return (best if counts[best] else ","), 0


def _columns(header: list[str]) -> tuple[list[tuple[int, str, str]], list[str], list[str]]:
    """[(index, field or 'metadata.<key>', header text)], unknown headers, ignored headers."""
    columns: list[tuple[int, str, str]] = []
    unknown: list[str] = []
    ignored: list[str] = []
    for index, raw in enumerate(header):
        text = raw.strip().lstrip("\ufeff")
        if not text:
            continue
        lowered = text.lower()
        for prefix in ("metadata.", "meta."):
            if lowered.startswith(prefix) and len(text) > len(prefix):
                columns.append((index, "metadata." + text[len(prefix) :].strip(), text))
                break
        else:
            field = HEADERS.get(_header_key(text))
            if field:
                columns.append((index, field, text))
            elif _header_key(text) == "source":
                ignored.append(text)
            else:
                unknown.append(text)
    return columns, unknown, ignored


def detect(content: Content) -> int:
    if content.kind != "text" or content.is_binary:
        return 0
    text = content.text
    delimiter, skip = _dialect(text)
    try:
        header = next(csv.reader(io.StringIO(_first_line(text[skip:])), delimiter=delimiter))
    except (StopIteration, csv.Error):
        return 0
    columns, _, _ = _columns(header)
    fields = {field for _, field, _ in columns}
    if not fields & _IDENTIFYING:
        return 0
    return 60 if len(fields) >= 2 else 40


def parse(content: Content) -> ParseResult:
    text, encoding = content.decoded
    warnings = Warnings()
    if encoding in ("windows-1252", "latin-1"):
        warnings.add(f"The file is not valid UTF-8; it was read as {encoding.title()}.")
    delimiter, skip = _dialect(text)
    reader = csv.reader(io.StringIO(text[skip:], newline=""), delimiter=delimiter, strict=False)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DiscoveryError(f"The CSV header row could not be read: {exc}.") from None
    if header is None:
        raise DiscoveryError("The CSV file has no header row.")
    columns, unknown, ignored = _columns(header)
    if not {field for _, field, _ in columns} & _IDENTIFYING:
        raise DiscoveryError(
            "The CSV header names no asset field (such as name, host, engine or database); "
            f"found: {', '.join(h.strip() for h in header if h.strip())[:300] or 'nothing'}."
        )
    if unknown:
        warnings.add(f"Columns not recognised, ignored: {', '.join(unknown)}.")
    if ignored:
        warnings.add(
            f"Column {', '.join(ignored)} ignored: the source label is set for the whole "
            "upload, not per row."
        )
    _warn_shared_columns(columns, warnings)

    records: list[DiscoveredRecord] = []
    width = len(header)
    n = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DiscoveryError(f"CSV error in data row {n + 1}: {exc}.") from None
        n += 1
        if not row or all(not cell.strip() for cell in row):
            continue
        records.append(_record(n, row, columns, width))
    if not records:
        warnings.add("The CSV file has a header but no data rows.")
    return ParseResult(format=NAME, records=records, warnings=warnings.finish())


def _warn_shared_columns(columns: list[tuple[int, str, str]], warnings: Warnings) -> None:
    by_field: dict[str, list[str]] = {}
    for _, field, text in columns:
        by_field.setdefault(field, []).append(text)
    for field, texts in by_field.items():
        if len(texts) > 1 and field not in ("host", "aliases"):
            warnings.add(
                f"Columns {', '.join(texts)} all map to {field}; the first non-empty one in "
                "each row is used."
            )


def _record(
    n: int, row: list[str], columns: list[tuple[int, str, str]], width: int
) -> DiscoveredRecord:
    return build_record(f"{NAME}:{n}", n, RecordBuilder(), _fill, row, columns, width)


def _fill(
    builder: RecordBuilder, row: list[str], columns: list[tuple[int, str, str]], width: int
) -> None:
    metadata: dict[str, Any] = {}
    host_seen = False
    for index, field, _text in columns:
        if index >= len(row):
            continue
        cell = row[index]
        if not cell.strip():
            continue
        if field.startswith("metadata."):
            metadata.setdefault(field[len("metadata.") :], cell.strip())
        elif field == "host":
            if host_seen:
                builder.add_host_candidate(cell)
            else:
                host_seen = True
                builder.set("host", cell)
        else:
            builder.set(field, cell)
    if len(row) > width and any(cell.strip() for cell in row[width:]):
        builder.warnings.append(f"{len(row) - width} cells beyond the last column ignored")
    if metadata:
        merged = dict(builder.fields.get("metadata") or {})
        for k, v in metadata.items():
            merged.setdefault(k, v)
        builder.fields["metadata"] = merged


register(
    Format(
        name=NAME,
        description="Spreadsheet or CMDB export with a header row (`,` `;` or tab separated)",
        detect=detect,
        parse=parse,
        extensions=("csv", "tsv", "txt"),
    )
)

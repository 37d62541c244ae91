"""The shapes every discovery parser returns, its errors, and the format registry.

A parser turns the bytes of one uploaded file into a `ParseResult`: one `DiscoveredRecord` per
input record, with the asset fields the source knows (under the service layer's field names),
the warnings met on the way, and the relationship evidence (`Relation`) the file holds. Parsing
is pure: no Flask, no database, no network, no files, so the same code runs in the web process
(format check at upload), in an RQ worker and in the CLI, and is tested without an app.

Two kinds of failure are kept apart on purpose:

* the whole file is unusable (not a supported format, malformed JSON/XML, hostile XML):
  `DiscoveryError`, with a message for a person that includes the line/column or byte position
  when one is known; nothing from that file may be written;
* one record is bad (invalid port, no name and nothing to derive one from): the record carries
  `error`, is counted failed and listed, and the rest of the file goes on (SPEC §6).
"""

from __future__ import annotations

import codecs
import gc
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from webapp.discovery.coverage import Coverage

# A cap on file-level warnings: a 100,000-port scan full of tcpwrapped ports must not produce
# a 100,000-line warning list; the count of what was left out is kept.
MAX_FILE_WARNINGS = 500


@dataclass
class Relation:
    """Evidence of a relationship between two discovered records (SPEC §3 relationship kinds).

    `source_key`/`target_key` are a cloud resource id (ARN, self-link, Azure id) whenever the
    source file names or implies one, so the link can be resolved against assets seen in other
    imports; otherwise they are record keys of this file (e.g. `aws_rds:<identifier>` when the
    output was trimmed of ARNs).
    """

    kind: str  # "replicates_to" | "member_of"
    source_key: str
    target_key: str


@dataclass
class DiscoveredRecord:
    key: str  # stable record key, SPEC §6
    # Asset fields by service name (webapp.services.assets.FIELDS), normalised to values the
    # service validators accept. Only what the source knows: an absent key means "unknown";
    # no field is ever None-filled, so a null can never overwrite a value.
    fields: dict[str, Any]
    warnings: list[str]
    error: str | None = None  # the record is invalid: counted failed and listed
    row: int | None = None  # 1-based data row / record number, for messages
    relations: list[Relation] = field(default_factory=list)
    # Every IP address the record's server is known to answer on (IP literals of host and
    # aliases, nmap addresses, cloud IP lists). With the DNS names in host/aliases they are the
    # FQDN<->IP bridges the matching step learns.
    ip_addresses: list[str] = field(default_factory=list)
    # a port a scanner saw open but could not fingerprint (SPEC §6): it confirms an asset that
    # already has this address and port, and never creates one or sets its engine
    sighting_only: bool = False

    @classmethod
    def unusable(cls, key: str, row: int, error: str) -> DiscoveredRecord:
        """A record that cannot be read at all: counted failed and listed with `error`."""
        return cls(key=key, fields={}, warnings=[], row=row, error=error)


@dataclass
class ParseResult:
    format: str
    records: list[DiscoveredRecord]
    warnings: list[str]  # file-level warnings (e.g. tcpwrapped ports skipped)
    source: str | None = None  # e.g. inventory-json's "source"
    generated_at: datetime | None = None  # inventory-json's "generated_at", when given
    # what the file covered (scan targets and ports, cloud scopes): `coverage.Coverage`, or
    # None for formats that say nothing about what they left out (CSV, inventory-json)
    coverage: Coverage | None = None


class DiscoveryError(Exception):
    """The whole file is unusable. The message is for a person."""


class UnknownFormat(DiscoveryError):
    """The content matches none of the supported formats; the message names them."""


class RecordError(Exception):
    """Raised inside a parser for one bad record; becomes `DiscoveredRecord.error`."""


class RecordDraft(Protocol):
    """What `build_record` needs of a record builder (`fields.RecordBuilder`): the fields and
    warnings collected so far, and `finish`, which gives (fields, warnings, ip_addresses) or
    raises RecordError."""

    fields: dict[str, Any]
    warnings: list[str]

    def finish(self) -> tuple[dict[str, Any], list[str], list[str]]: ...


def build_record(
    key: str, row: int, builder: RecordDraft, fill: Callable[..., object], *args: Any
) -> DiscoveredRecord:
    """One record from `fill(builder, *args)` then `builder.finish()`. A RecordError from either
    gives a failed record (counted and listed, SPEC §6) with what was set before the error."""
    try:
        fill(builder, *args)
        fields, warnings, ips = builder.finish()
    except RecordError as exc:
        return DiscoveredRecord(
            key=key, fields=builder.fields, warnings=builder.warnings, error=str(exc), row=row
        )
    return DiscoveredRecord(key=key, fields=fields, warnings=warnings, row=row, ip_addresses=ips)


class Warnings(list[str]):
    """A list of warnings that keeps at most `limit` and counts the rest."""

    def __init__(self, limit: int = MAX_FILE_WARNINGS) -> None:
        super().__init__()
        self.limit = limit
        self.dropped = 0

    def add(self, message: str) -> None:
        if len(self) < self.limit:
            self.append(message)
        else:
            self.dropped += 1

    def finish(self) -> list[str]:
        out = list(self)
        if self.dropped:
            out.append(f"… and {self.dropped} more warnings like these (not listed).")
        return out


# --- content sniffing -----------------------------------------------------------------------

_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class Content:
    """The uploaded bytes plus what detection and parsing share (decoded text, parsed JSON),
    computed once: detecting a JSON format parses the document, and the parser reuses it."""

    def __init__(self, data: bytes, filename: str | None = None) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError("discovery content must be bytes")
        self.data = bytes(data)
        self.filename = filename

    @cached_property
    def extension(self) -> str:
        name = (self.filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
        return name.rsplit(".", 1)[-1].lower() if "." in name else ""

    @cached_property
    def head(self) -> bytes:
        """The first bytes after any byte-order mark and leading whitespace."""
        head = self.data[:4096]
        for bom in _BOMS:
            if head.startswith(bom):
                head = head[len(bom) :]
                break
        return head.lstrip()

    @cached_property
    def is_empty(self) -> bool:
        if self.head:
            return False
        data = self.data
        for bom in _BOMS:
            if data.startswith(bom):
                data = data[len(bom) :]
                break
        return not data.strip()

    @cached_property
    def kind(self) -> str:
        """'json', 'xml' or 'text', from the first significant character."""
        if self.data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            # UTF-16 text (Excel's "Unicode text"): decide from the decoded start.
            first = self.text.lstrip()[:1]
        else:
            first = self.head[:1].decode("latin-1")
        if first in ("{", "["):
            return "json"
        if first == "<":
            return "xml"
        return "text"

    @cached_property
    def is_binary(self) -> bool:
        if self.data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return False
        return b"\x00" in self.data[:8192]

    @cached_property
    def decoded(self) -> tuple[str, str]:
        """(text, encoding): UTF-8 with or without BOM, UTF-16 with BOM, else Windows-1252 or
        Latin-1 (spreadsheets exported on Windows); never fails."""
        data = self.data
        if data.startswith(codecs.BOM_UTF8):
            try:
                return data[3:].decode("utf-8"), "utf-8-sig"
            except UnicodeDecodeError:
                data = data[3:]
        elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            try:
                return data.decode("utf-16"), "utf-16"
            except UnicodeDecodeError as exc:
                raise DiscoveryError(
                    f"The file starts with a UTF-16 byte-order mark but is not valid UTF-16 "
                    f"(byte {exc.start})."
                ) from None
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
        try:
            return data.decode("cp1252"), "windows-1252"
        except UnicodeDecodeError:
            return data.decode("latin-1"), "latin-1"

    @property
    def text(self) -> str:
        return self.decoded[0]

    @cached_property
    def json(self) -> Any:
        """The parsed JSON document; DiscoveryError (with line and column) when it is invalid.

        JSON Lines of objects (one object per line, as the inventory's JSON export writes) reads
        as the list of those objects."""
        try:
            return load_json(self.data)
        except DiscoveryError:
            objects = load_json_lines(self.data)
            if objects is None:
                raise
            return objects


def load_json(data: bytes) -> Any:
    """Parse JSON (RFC 8259: UTF-8, UTF-16 or UTF-32, BOM tolerated) with messages for people."""
    encoding = json.detect_encoding(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DiscoveryError(
            f"The JSON is not valid {encoding.upper().replace('-SIG', '')} text: "
            f"invalid byte at position {exc.start}."
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (the file may be truncated)" if exc.pos >= len(text.rstrip()) else ""
        raise DiscoveryError(
            f"Invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}{hint}."
        ) from None
    except RecursionError:
        raise DiscoveryError("Invalid JSON: the document is nested too deeply.") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python allows
        raise DiscoveryError(f"Invalid JSON: {exc}.") from None


def load_json_lines(data: bytes) -> list[dict[str, Any]] | None:
    """The objects of a JSON Lines file (UTF-8, BOM tolerated, one JSON object per non-blank
    line, at least two lines), or None when `data` is not that."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    objects = []
    for line in text.split("\n"):  # not splitlines(): U+2028 may stand unescaped in a string
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except (ValueError, RecursionError):
            return None
        if not isinstance(item, dict):
            return None
        objects.append(item)
    return objects if len(objects) > 1 else None


# --- helpers shared by the JSON parsers (aws-rds-json, gcp-sql-json, azure-json) -------------
# Cloud CLI output is read defensively: any value may be missing, null or of another type than
# the API documents, and such a value means "unknown", never an error.


def text_or_none(value: Any) -> str | None:
    """`value` without surrounding whitespace when it is a non-blank string, else None."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty dict (so `.get` can follow safely)."""
    return value if isinstance(value, dict) else {}


def text_list(value: Any) -> list[str]:
    """The non-blank strings of a JSON list, stripped, in order; [] when `value` is no list."""
    if not isinstance(value, list):
        return []
    return [v.strip() for v in value if isinstance(v, str) and v.strip()]


def json_items(doc: Any, is_single: Callable[[dict[str, Any]], bool]) -> list[Any] | None:
    """The items of a cloud listing: the document itself when it is a list (`… list` output),
    `[doc]` when it is one object that `is_single` accepts (`… show`/`describe` output), else
    None (the document has neither shape). The items themselves are not checked."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and is_single(doc):
        return [doc]
    return None


def detect_json_items(
    content: Content,
    is_single: Callable[[dict[str, Any]], bool],
    looks_like: Callable[[Any], bool],
    score: int,
) -> int:
    """A `Format.detect` for a cloud listing: `score` when the content is JSON whose items (see
    `json_items`) include, among the first five, one that `looks_like` a record of the format;
    else 0. An empty list is nobody's listing: 0."""
    if content.kind != "json":
        return 0
    items = json_items(content.json, is_single)
    if items and any(looks_like(item) for item in items[:5]):
        return score
    return 0


# --- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """One discovery format. `detect` scores the content (0 = not this format, higher = surer);
    `parse` turns it into a ParseResult and may raise DiscoveryError."""

    name: str
    description: str
    detect: Callable[[Content], int]
    parse: Callable[[Content], ParseResult]
    extensions: tuple[str, ...] = ()


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    if fmt.name in FORMATS:
        raise ValueError(f"discovery format {fmt.name!r} registered twice")
    FORMATS[fmt.name] = fmt
    return fmt


def supported() -> str:
    return ", ".join(FORMATS)


def _detect(content: Content) -> str:
    if content.is_empty:
        raise DiscoveryError("The file is empty.")
    scores = {name: fmt.detect(content) for name, fmt in FORMATS.items()}
    best = max(scores.values(), default=0)
    if best <= 0:
        raise UnknownFormat(_unknown_message(content))
    tied = [name for name, score in scores.items() if score == best]
    if len(tied) > 1 and content.extension:
        by_extension = [n for n in tied if content.extension in FORMATS[n].extensions]
        if by_extension:
            return by_extension[0]
    return tied[0]


def _unknown_message(content: Content) -> str:
    if content.is_binary:
        what = "This looks like a binary file, not a discovery file."
    elif content.kind == "json":
        what = "This is JSON, but not in the shape of any supported format."
    elif content.kind == "xml":
        what = "This is XML, but not nmap -oX output (no <nmaprun> element)."
        if b"<!ENTITY" in content.data[:65536]:
            what += (
                " It also declares entities, which are refused (entity-expansion and "
                "external-entity attacks)."
            )
    else:
        what = "The file format was not recognised."
    return f"{what} Supported formats: {supported()}."


def detect_format(data: bytes, filename: str | None = None) -> str:
    """Name the format of `data`, judged from its content; the file name's extension only
    breaks ties. Raises UnknownFormat (naming the supported formats) or, for an empty file or
    JSON that does not parse, DiscoveryError."""
    with _no_cyclic_gc():
        return _detect(Content(data, filename))


def parse(data: bytes, filename: str | None = None, format: str | None = None) -> ParseResult:
    """Parse a discovery file. `format` skips detection (it must be a registered name)."""
    content = Content(data, filename)
    with _no_cyclic_gc():
        if format is None:
            format = _detect(content)
        elif format not in FORMATS:
            raise UnknownFormat(f"Unknown format {format!r}. Supported formats: {supported()}.")
        elif content.is_empty:
            raise DiscoveryError("The file is empty.")
        result = FORMATS[format].parse(content)
    _mark_duplicate_keys(result)
    _drop_repeated_relations(result)
    return result


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Parsing a large file allocates millions of small objects that live until the end, so
    the cyclic garbage collector keeps re-scanning a growing heap for nothing: it doubled the
    time of a 100,000-record parse. Parsers create no reference cycles worth collecting;
    reference counting still frees everything. The previous state is restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _drop_repeated_relations(result: ParseResult) -> None:
    """A link is often stated on both ends (a primary lists its replica, the replica names its
    primary): keep it once, on the first record that states it."""
    seen: set[tuple[str, str, str]] = set()
    for record in result.records:
        if not record.relations:
            continue
        kept = []
        for relation in record.relations:
            triple = (relation.kind, relation.source_key, relation.target_key)
            if triple not in seen and relation.source_key != relation.target_key:
                seen.add(triple)
                kept.append(relation)
        record.relations = kept


def _mark_duplicate_keys(result: ParseResult) -> None:
    """Record keys identify input records (SPEC §6), so two records under one key would make
    one outcome ambiguous: the later ones fail with a pointer to the first."""
    first: dict[str, int] = {}
    for index, record in enumerate(result.records, start=1):
        seen = first.setdefault(record.key, index)
        if seen != index and record.error is None:
            record.error = (
                f"Duplicate record: {record.key} already appears as record {seen} of this file."
            )

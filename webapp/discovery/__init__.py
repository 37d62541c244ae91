"""Discovery file parsers (SPEC §6): pure functions from uploaded bytes to discovered records.

    from webapp.discovery import parse, detect_format, DiscoveryError, UnknownFormat
    result = parse(data, filename="scan.xml")          # format detected from content
    result = parse(data, format="csv")                 # or named explicitly

Each format is a module that registers itself in `FORMATS` (name -> Format) when imported;
importing this package imports them all, so adding a format is adding a module and its name
to MODULES. No Flask, SQLAlchemy or I/O here: matching and writing are the import job's business.
"""

from importlib import import_module

from webapp.discovery.base import (
    FORMATS,
    DiscoveredRecord,
    DiscoveryError,
    Format,
    ParseResult,
    Relation,
    UnknownFormat,
    detect_format,
    parse,
)

# One module per format; each registers itself in FORMATS when imported. This order (SPEC §6's)
# is the order formats are listed in messages.
MODULES = ("inventory_json", "csv_format", "nmap_xml", "aws_rds", "gcp_sql", "azure")
for _module in MODULES:
    import_module(f"{__name__}.{_module}")

__all__ = [
    "FORMATS",
    "DiscoveredRecord",
    "DiscoveryError",
    "Format",
    "ParseResult",
    "Relation",
    "UnknownFormat",
    "detect_format",
    "parse",
]

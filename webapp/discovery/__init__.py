"""Discovery file parsers (SPEC §6): pure functions from uploaded bytes to discovered records.

    from webapp.discovery import parse, detect_format, DiscoveryError, UnknownFormat
    result = parse(data, filename="scan.xml")          # format detected from content
    result = parse(data, format="csv")                 # or named explicitly

Each format is a module that registers itself in `FORMATS` (name -> Format) when imported;
this package imports them all, below, so adding a format is adding a module and importing it
there. No Flask, SQLAlchemy or I/O here: matching and writing are the import job's business.
"""

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

# The registry: one module per format, each registering itself in FORMATS when imported. This
# import order (SPEC §6's) is the order of FORMATS, so of the formats listed in messages.
# isort: off
from webapp.discovery import inventory_json  # inventory-json
from webapp.discovery import csv_format  # csv
from webapp.discovery import nmap_xml  # nmap-xml
from webapp.discovery import aws_rds  # aws-rds-json
from webapp.discovery import gcp_sql  # gcp-sql-json
from webapp.discovery import azure  # azure-json

# isort: on

MODULES = (inventory_json, csv_format, nmap_xml, aws_rds, gcp_sql, azure)

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

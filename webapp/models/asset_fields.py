"""The asset field catalogue: the one list of an asset's fields (SPEC §3).

Each field's label, kind, limits and allowed values, and what the product may do with it. The
service's validators (`services/assets.FIELDS`), the API's write schema (`api/schemas`), the
parsers' limits (`discovery/fields`), the labels pages show (`web/filters`) and which fields are
business fields for source precedence (`services/matching`) are all built from it, and
`tests/services/test_asset_fields.py` checks the web form against it. It lives beside the models
because every layer reads it, the parsers included; it holds data only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from webapp.models.enums import (
    AssetStatus,
    CloudProvider,
    Criticality,
    DataClassification,
    Engine,
    Environment,
)

Kind = Literal["text", "choice", "integer", "number", "boolean", "timestamp", "list", "tags", "mapping"]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    kind: Kind
    # text: most characters; list, tags: most characters per item
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_items: int | None = None  # list, tags
    enum: type[enum.Enum] | None = None  # choice
    required: bool = False  # on create
    # business fields (what people and CMDBs know best) follow `business_source_precedence`,
    # technical ones `source_precedence`
    business: bool = False
    secret: bool = False  # stored encrypted, never shown, exported or logged
    exportable: bool = True
    bulk_editable: bool = False  # offered by bulk "set field" (tags: add/remove)
    attribute: str | None = None  # the model attribute, where it differs from the name
    help: str | None = None
    writable: bool = True  # set by people (form, API, bulk); False: only imports set it
    default: str | None = None  # the value an empty one becomes (the column is NOT NULL)

    @property
    def choices(self) -> list[str]:
        return [m.value for m in self.enum] if self.enum else []


CATALOGUE: tuple[FieldSpec, ...] = (
    FieldSpec("name", "Name", "text", max_length=200, required=True, business=True),
    FieldSpec("engine", "Engine", "choice", enum=Engine, required=True),
    FieldSpec("engine_version", "Engine version", "text", max_length=100),
    FieldSpec("host", "Host", "text", max_length=255),
    FieldSpec("port", "Port", "integer", minimum=1, maximum=65535),
    FieldSpec("database_name", "Database name", "text", max_length=200),
    FieldSpec("aliases", "Aliases", "list", max_length=255, max_items=50,
              help="Other host names or IPs, one per line."),
    FieldSpec("cloud_provider", "Cloud provider", "choice", enum=CloudProvider),
    FieldSpec("region", "Region", "text", max_length=100),
    FieldSpec("cloud_resource_id", "Cloud resource ID", "text", max_length=500,
              help="ARN, self-link or Azure id."),
    FieldSpec("environment", "Environment", "choice", enum=Environment, business=True,
              bulk_editable=True, default=Environment.unknown.value),
    FieldSpec("status", "Status", "choice", enum=AssetStatus, business=True, bulk_editable=True,
              default=AssetStatus.active.value),
    FieldSpec("owner", "Owner", "text", max_length=200, business=True, bulk_editable=True),
    FieldSpec("criticality", "Criticality", "choice", enum=Criticality, business=True,
              bulk_editable=True),
    FieldSpec("data_classification", "Data classification", "choice", enum=DataClassification,
              business=True, bulk_editable=True),
    FieldSpec("encrypted_at_rest", "Encrypted at rest", "boolean"),
    FieldSpec("tls_required", "TLS required", "boolean"),
    FieldSpec("publicly_accessible", "Publicly accessible", "boolean"),
    FieldSpec("backup_retention_days", "Backup retention (days)", "integer", minimum=0,
              maximum=3650),
    FieldSpec("last_backup_at", "Last backup", "timestamp",
              help="ISO 8601, e.g. 2026-11-01T03:00:00+00:00"),
    FieldSpec("deletion_protection", "Deletion protection", "boolean"),
    FieldSpec("connection_string", "Connection string", "text", max_length=4000, secret=True,
              exportable=False, help="Stored encrypted. Leave empty to keep the current one."),
    FieldSpec("metadata", "Metadata", "mapping", attribute="metadata_"),
    FieldSpec("notes", "Notes", "text", max_length=20000, business=True),
    FieldSpec("tags", "Tags", "tags", max_length=64, max_items=50, bulk_editable=True,
              help="Comma-separated, e.g. pci, team=payments"),
    FieldSpec("source", "Source", "text", max_length=100, writable=False, default="manual"),
    FieldSpec("confidence", "Confidence", "number", minimum=0, maximum=1, writable=False),
)

BY_NAME: dict[str, FieldSpec] = {f.name: f for f in CATALOGUE}
NAMES: tuple[str, ...] = tuple(BY_NAME)
BUSINESS_FIELDS = frozenset(f.name for f in CATALOGUE if f.business)
SECRET_FIELDS = frozenset(f.name for f in CATALOGUE if f.secret)
EXPORTABLE = tuple(f.name for f in CATALOGUE if f.exportable)
BULK_EDITABLE = tuple(f.name for f in CATALOGUE if f.bulk_editable)
TEXT_LIMITS = {f.name: f.max_length for f in CATALOGUE if f.kind == "text" and f.max_length}
LABELS = {f.name: f.label for f in CATALOGUE}
WRITABLE = tuple(f.name for f in CATALOGUE if f.writable)


def spec(name: str) -> FieldSpec:
    return BY_NAME[name]

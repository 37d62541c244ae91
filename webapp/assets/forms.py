"""The asset form. WTForms renders and coerces; the service validates for every entry point."""

from __future__ import annotations

import json
from typing import Any

from flask import has_request_context, request
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import Optional

from webapp.models import (
    Asset,
    AssetStatus,
    CloudProvider,
    Criticality,
    DataClassification,
    Engine,
    Environment,
    asset_fields,
)
from webapp.services.errors import ValidationFailed


# SelectChoice, not tuples: WTForms 3.3 deprecates tuple choices (removed in 3.4)
def _choices(enum_cls: Any, blank: str | None = None) -> list[SelectChoice]:
    options = [SelectChoice(m.value, m.value.replace("_", " ")) for m in enum_cls]
    return [SelectChoice("", blank), *options] if blank is not None else options


LABEL = asset_fields.LABELS
HELP = {f.name: f.help or "" for f in asset_fields.CATALOGUE}
TRI_STATE = [SelectChoice("", "unknown"), SelectChoice("yes"), SelectChoice("no")]
BOOL_FIELDS = ("encrypted_at_rest", "tls_required", "publicly_accessible", "deletion_protection")
TEXT_FIELDS = (
    "name", "engine_version", "host", "database_name", "region", "cloud_resource_id", "owner",
    "notes", "last_backup_at",
)
ENUM_FIELDS = ("engine", "cloud_provider", "environment", "status", "criticality",
               "data_classification")


class AssetForm(FlaskForm):
    version = HiddenField()
    name = StringField(LABEL["name"])
    engine = SelectField(LABEL["engine"], choices=_choices(Engine, "choose an engine"), default="")
    engine_version = StringField(LABEL["engine_version"])
    host = StringField(LABEL["host"])
    port = IntegerField(LABEL["port"], validators=[Optional()])
    database_name = StringField(LABEL["database_name"])
    aliases = TextAreaField(LABEL["aliases"], description=HELP["aliases"])
    cloud_provider = SelectField(LABEL["cloud_provider"], choices=_choices(CloudProvider, "none"), default="")
    region = StringField(LABEL["region"])
    cloud_resource_id = StringField(LABEL["cloud_resource_id"], description=HELP["cloud_resource_id"])
    environment = SelectField(LABEL["environment"], choices=_choices(Environment), default="unknown")
    status = SelectField(LABEL["status"], choices=_choices(AssetStatus), default="active")
    owner = StringField(LABEL["owner"])
    criticality = SelectField(LABEL["criticality"], choices=_choices(Criticality, "not set"), default="")
    data_classification = SelectField(
        LABEL["data_classification"], choices=_choices(DataClassification, "not set"), default=""
    )
    encrypted_at_rest = SelectField(LABEL["encrypted_at_rest"], choices=TRI_STATE, default="")
    tls_required = SelectField(LABEL["tls_required"], choices=TRI_STATE, default="")
    publicly_accessible = SelectField(LABEL["publicly_accessible"], choices=TRI_STATE, default="")
    deletion_protection = SelectField(LABEL["deletion_protection"], choices=TRI_STATE, default="")
    backup_retention_days = IntegerField(LABEL["backup_retention_days"], validators=[Optional()])
    last_backup_at = StringField(LABEL["last_backup_at"], description=HELP["last_backup_at"])
    connection_string = PasswordField(LABEL["connection_string"], description=HELP["connection_string"])
    clear_connection_string = BooleanField("Remove the stored connection string")
    tags = StringField(LABEL["tags"], description=HELP["tags"])
    notes = TextAreaField(LABEL["notes"])
    submit = SubmitField("Save asset")

    def fill_from(self, asset: Asset) -> None:
        """Show an asset's current values (GET of the edit page)."""
        self.version.data = str(asset.version)
        for name in TEXT_FIELDS:
            value = getattr(asset, name)
            getattr(self, name).data = value.isoformat() if hasattr(value, "isoformat") else value
        for name in ENUM_FIELDS:
            value = getattr(asset, name)
            getattr(self, name).data = value.value if value is not None else ""
        for name in BOOL_FIELDS:
            value = getattr(asset, name)
            getattr(self, name).data = "" if value is None else ("yes" if value else "no")
        self.port.data = asset.port
        self.backup_retention_days.data = asset.backup_retention_days
        self.aliases.data = "\n".join(asset.aliases or [])
        self.tags.data = ", ".join(t.name for t in asset.tags)

    def to_data(self) -> dict[str, Any]:
        """The submitted values as service fields."""
        data: dict[str, Any] = {}
        for name in TEXT_FIELDS:
            data[name] = getattr(self, name).data or None
        for name in ENUM_FIELDS:
            data[name] = getattr(self, name).data or None
        for name in BOOL_FIELDS:
            value = getattr(self, name).data
            data[name] = None if not value else value == "yes"
        data["port"] = self.port.data
        data["backup_retention_days"] = self.backup_retention_days.data
        data["aliases"] = [a.strip() for a in (self.aliases.data or "").replace(",", "\n").splitlines()]
        data["tags"] = [t.strip() for t in (self.tags.data or "").split(",")]
        if self.clear_connection_string.data:
            data["connection_string"] = None
        elif self.connection_string.data:
            data["connection_string"] = self.connection_string.data
        if has_request_context() and request.form.get("metadata-rows"):  # the page's rows
            data["metadata"] = self.metadata_rows()
        return data

    def metadata_rows(self) -> dict[str, Any]:
        """Metadata as posted: one key and one value per row, in order; a row whose key is
        blank is dropped. A value that came as JSON (a list or number a scanner reported) is
        read back as JSON, so editing other rows keeps its type."""
        keys = request.form.getlist("metadata-key")
        values = request.form.getlist("metadata-value")
        kinds = request.form.getlist("metadata-kind")
        out: dict[str, Any] = {}
        errors: list[str] = []
        for i, key in enumerate(keys):
            key = key.strip()
            if not key:
                continue
            value = values[i] if i < len(values) else ""
            if (kinds[i] if i < len(kinds) else "text") == "json":
                try:
                    out[key] = json.loads(value)
                except ValueError:
                    errors.append(f"The value of “{key}” is not valid JSON.")
                    continue
            else:
                out[key] = value
        if errors:
            raise ValidationFailed({"metadata": " ".join(errors)})
        return out

    def metadata_view(self, asset: Asset | None) -> list[tuple[str, str, str]]:
        """The rows to show: (key, value as text, "text" or "json"); posted rows win, so a
        refused form shows what was typed."""
        if request.form.get("metadata-rows"):
            keys = request.form.getlist("metadata-key")
            values = request.form.getlist("metadata-value")
            kinds = request.form.getlist("metadata-kind")
            return [(k, values[i] if i < len(values) else "", kinds[i] if i < len(kinds) else "text")
                    for i, k in enumerate(keys) if k.strip()]
        current = (asset.metadata_ if asset is not None else None) or {}
        return [(k, v, "text") if isinstance(v, str) else (k, json.dumps(v, ensure_ascii=False), "json")
                for k, v in current.items()]


class TagForm(FlaskForm):
    tag = StringField("Add tag")
    submit = SubmitField("Add")

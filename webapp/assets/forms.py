"""The asset form. WTForms renders and coerces; the service validates for every entry point."""

from __future__ import annotations

from typing import Any

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
        return data


class TagForm(FlaskForm):
    tag = StringField("Add tag")
    submit = SubmitField("Add")

"""The bulk action form: what to do to the selected assets. The choices come from the field
catalogue (`bulk_editable` fields and their values); the service validates."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField, SubmitField

from webapp.models import asset_fields
from webapp.services.change_sets import SETTABLE
from webapp.services.errors import ValidationFailed

NOT_SET = "(not set)"


def _values(name: str) -> list[SelectChoice]:
    spec = asset_fields.spec(name)
    options = [SelectChoice(v, v.replace("_", " ")) for v in spec.choices]
    # a nullable choice can be cleared; a NOT NULL one (environment, status) cannot
    return options if spec.default is not None else [SelectChoice("", NOT_SET), *options]


ACTIONS = [
    *(SelectChoice(f"set:{name}", f"Set {asset_fields.LABELS[name].lower()}") for name in SETTABLE),
    SelectChoice("add_tag", "Add a tag"),
    SelectChoice("remove_tag", "Remove a tag"),
    SelectChoice("delete", "Move to the trash"),
]
SCOPES = ("ids", "filter")


def _value_field(name: str) -> Any:
    label = f"New {asset_fields.LABELS[name].lower()}"
    if asset_fields.spec(name).kind == "choice":
        return SelectField(label, choices=_values(name), default="")
    return StringField(label)


BulkFields = type("BulkFields", (FlaskForm,), {
    "__doc__": "A bulk action: one action and the value it needs.",
    "action": SelectField("Action", choices=ACTIONS, default=ACTIONS[0].value),
    **{name: _value_field(name) for name in SETTABLE},
    "tag": StringField("Tag"),
    "submit": SubmitField("Preview change"),
})


class BulkForm(BulkFields):  # type: ignore[misc, valid-type]
    def value_fields(self) -> list[tuple[str, Any]]:
        """(the action it belongs to, the field) for each value field, in order."""
        fields = [(f"set:{name}", getattr(self, name)) for name in SETTABLE]
        return [*fields, ("add_tag remove_tag", self.tag)]

    def to_action(self) -> dict[str, Any]:
        """The chosen action as `BulkAction.parse` arguments. A blank owner or tag is refused
        here (the service would read a blank owner as "clear it", which the API allows)."""
        action = self.action.data or ""
        if action.startswith("set:") and action[4:] in SETTABLE:
            name = action[4:]
            value = getattr(self, name).data
            if asset_fields.spec(name).kind == "text" and not (value or "").strip():
                raise ValidationFailed({name: f"Enter the new {asset_fields.LABELS[name].lower()}."})
            return {"set_values": {name: value or None}}
        if action in ("add_tag", "remove_tag"):
            if not (self.tag.data or "").strip():
                raise ValidationFailed({"tag": "Enter a tag."})
            return {f"{action}s": [self.tag.data]}
        if action == "delete":
            return {"delete": True}
        raise ValidationFailed({"action": "Choose an action."})


# the service's field names -> this form's
ERROR_FIELDS = {"add_tags": "tag", "remove_tags": "tag", "delete": "action", "set": "action"}


def errors_for_form(errors: dict[str, str]) -> dict[str, str]:
    return {ERROR_FIELDS.get(k, k): v for k, v in errors.items()}

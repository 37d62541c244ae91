"""The field catalogue is the one source: the service's validators, the API's input schema, the
parsers' limits, the labels and the web form all agree with it. A field added in one place and
not the others fails here."""

from __future__ import annotations

import pytest
from wtforms import IntegerField, PasswordField, SelectField, StringField, TextAreaField

from webapp.api import schemas
from webapp.assets.forms import AssetForm
from webapp.discovery import fields as discovery_fields
from webapp.models import Asset, asset_fields
from webapp.services import assets, matching
from webapp.web.filters import field_label

CATALOGUE = asset_fields.CATALOGUE


def test_the_service_validates_exactly_the_catalogue():
    assert list(assets.FIELDS) == [f.name for f in CATALOGUE]


@pytest.mark.parametrize("spec", [f for f in CATALOGUE if f.kind == "text"], ids=lambda f: f.name)
def test_text_limits_hold_in_the_service(spec):
    limit = spec.max_length
    assert assets.FIELDS[spec.name]("x" * limit) == "x" * limit
    with pytest.raises(ValueError, match=f"at most {limit} characters"):
        assets.FIELDS[spec.name]("x" * (limit + 1))


@pytest.mark.parametrize("spec", [f for f in CATALOGUE if f.kind == "choice"], ids=lambda f: f.name)
def test_choices_hold_in_the_service_and_the_api(spec):
    for value in spec.choices:
        assert assets.FIELDS[spec.name](value).value == value
    with pytest.raises(ValueError, match="Choose one of"):
        assets.FIELDS[spec.name]("nope")
    assert [v for v in schemas.AssetWrite().fields[spec.name].validate.choices if v] == spec.choices


def test_the_api_accepts_the_writable_fields_with_the_catalogue_limits():
    write = schemas.AssetWrite().fields
    assert list(write) == [f.name for f in CATALOGUE if f.writable]
    for spec in CATALOGUE:
        if not spec.writable:
            continue
        field = write[spec.name]
        assert field.required == spec.required, spec.name
        assert field.load_only == spec.secret, spec.name
        if spec.kind == "text":
            lengths = [v for v in field.validators if hasattr(v, "max")]
            assert lengths[0].max == spec.max_length, spec.name
        if spec.kind == "integer":
            assert (field.validators[0].min, field.validators[0].max) == (spec.minimum, spec.maximum)
        if spec.kind in ("list", "tags"):
            assert field.validators[0].max == spec.max_items
            assert [v.max for v in field.inner.validators if hasattr(v, "max")] == [spec.max_length]
    returned = schemas.Asset().fields
    assert not any(f.name in returned for f in CATALOGUE if f.secret)
    assert "has_connection_string" in returned


def test_the_parsers_use_the_catalogue_limits():
    assert {f.name: f.max_length for f in CATALOGUE if f.kind == "text"} == discovery_fields.TEXT_LIMITS
    assert asset_fields.spec("tags").max_items == discovery_fields.MAX_TAGS
    assert asset_fields.spec("tags").max_length == discovery_fields.MAX_TAG_LEN
    assert asset_fields.spec("aliases").max_items == discovery_fields.MAX_ALIASES
    assert asset_fields.spec("aliases").max_length == discovery_fields.MAX_ALIAS_LEN
    assert discovery_fields.SECRET_FIELDS == asset_fields.SECRET_FIELDS


def test_business_fields_and_labels_come_from_the_catalogue():
    assert {f.name for f in CATALOGUE if f.business} == matching.BUSINESS_FIELDS
    for spec in CATALOGUE:
        assert field_label(spec.name) == spec.label


def test_every_catalogue_field_is_an_asset_attribute():
    for spec in CATALOGUE:
        attribute = spec.attribute or spec.name
        if spec.name == "connection_string":
            attribute = "connection_string_encrypted"
        if spec.name == "tags":
            continue  # a relationship
        assert hasattr(Asset, attribute), spec.name


FORM_KIND = {"text": (StringField, TextAreaField, PasswordField), "choice": (SelectField,),
             "integer": (IntegerField,), "boolean": (SelectField,), "timestamp": (StringField,),
             "list": (TextAreaField,), "tags": (StringField,)}


def test_the_web_form_has_every_writable_field_with_its_label(app):
    with app.test_request_context():
        form = AssetForm(meta={"csrf": False})
    editable = [f for f in CATALOGUE if f.writable and f.kind != "mapping"]
    for spec in editable:
        field = form[spec.name]
        assert field.label.text == spec.label, spec.name
        assert isinstance(field, FORM_KIND[spec.kind]), spec.name
        if spec.help:
            assert field.description == spec.help, spec.name
        if spec.kind == "choice":
            offered = [c.value if hasattr(c, "value") else c[0] for c in field.choices]
            assert [v for v in offered if v] == spec.choices, spec.name
    assert set(form.to_data()) - {"connection_string"} == {f.name for f in editable} - {"connection_string"}

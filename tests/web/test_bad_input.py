"""Bad input of any kind gets a clear message next to the field and a 4xx, never a 500 and never
partial data (SPEC §10)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import select

from tests.factories import ACTOR, asset_data, make_asset
from tests.web.browser import form_values, row_counts
from tests.web.pages import alert_text, field_messages, parse
from webapp.models import Asset, Tag
from webapp.services import assets as asset_service
from webapp.services.errors import ValidationFailed

# (form field, what the person typed, part of the message shown under that field)
BAD_FIELDS = [
    ("name", "x" * 201, "at most 200 characters"),
    ("name", "   ", "This field is required"),
    ("port", "0", "from 1 to 65535"),
    ("port", "70000", "from 1 to 65535"),
    ("port", "abc", "Not a valid integer"),
    ("engine", "nope", "Not a valid choice"),
    ("environment", "nowhere", "Not a valid choice"),
    ("criticality", "extreme", "Not a valid choice"),
    ("backup_retention_days", "-1", "from 0 to 3650"),
    ("backup_retention_days", "99999", "from 0 to 3650"),
    ("backup_retention_days", "two weeks", "Not a valid integer"),
    ("last_backup_at", "yesterday", "ISO 8601"),
    ("last_backup_at", "2026-01-01T03:00:00", "time zone"),
    ("encrypted_at_rest", "maybe", "Not a valid choice"),
]


def _snapshot(session, asset_id) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    session.expire_all()
    asset = session.get(Asset, asset_id)
    return {**asset_service.snapshot(asset), "version": asset.version,
            "updated_at": asset.updated_at, "locked_fields": list(asset.locked_fields)}


def _assert_message_at(html: str | bytes, field: str, text: str) -> None:
    page = parse(html)
    assert text in field_messages(page, field), (
        f"expected {text!r} under {field!r}, got {field_messages(page, field)!r}"
    )
    control = page.by_id(field)
    assert control is not None and control.get("aria-invalid") == "true"


@pytest.mark.parametrize(("field", "typed", "message"), BAD_FIELDS,
                         ids=[f"{f}={v[:12]!r}" for f, v, _ in BAD_FIELDS])
def test_bad_create_form_writes_nothing(client, session, login_as, field, typed, message):
    login_as("analyst")
    data = form_values(client.get("/assets/new").data, "/assets/new")
    data.update(name="good-name", engine="postgresql", host="db.example.com", port="5432",
                owner="me@example.com")
    data[field] = typed
    before = row_counts(session)

    response = client.post("/assets/new", data=data)
    assert response.status_code == 422
    _assert_message_at(response.data, field, message)
    # what the person typed is still there to correct
    if field in ("name", "port", "backup_retention_days", "last_backup_at"):
        assert parse(response.data).by_id(field).get("value", "") == typed
    assert row_counts(session) == before


@pytest.mark.parametrize(("field", "typed", "message"), BAD_FIELDS,
                         ids=[f"{f}={v[:12]!r}" for f, v, _ in BAD_FIELDS])
def test_bad_edit_form_changes_nothing(client, session, login_as, field, typed, message):
    asset = make_asset(session, name="steady-db")
    login_as("analyst")
    url = f"/assets/{asset.id}/edit"
    data = form_values(client.get(url).data, url)
    data["owner"] = "someone-else@example.com"  # a good change alongside the bad one
    data[field] = typed
    before, counts = _snapshot(session, asset.id), row_counts(session)

    response = client.post(url, data=data, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "<html" not in response.get_data(as_text=True)  # the form block, swapped in place
    _assert_message_at(response.data, field, message)
    assert _snapshot(session, asset.id) == before
    assert row_counts(session) == counts


def test_htmx_create_with_errors_rerenders_the_form_block(client, session, login_as):
    login_as("analyst")
    response = client.post("/assets/new", data={"name": "", "engine": "postgresql"},
                           headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<html" not in html and 'id="asset-form"' in html
    _assert_message_at(html, "name", "This field is required")


def test_stale_version_is_a_conflict_and_writes_nothing(client, session, login_as):
    asset = make_asset(session, name="steady-db", owner="a@example.com")
    asset_service.update(session, ACTOR, asset.id, {"notes": "someone else"}, expected_version=1)
    login_as("analyst")
    url = f"/assets/{asset.id}/edit"
    data = form_values(client.get(url).data, url)
    data.update(version="1", owner="b@example.com")
    before, counts = _snapshot(session, asset.id), row_counts(session)

    response = client.post(url, data=data)
    assert response.status_code == 409
    page = parse(response.data)
    assert "Someone else saved this asset" in alert_text(page)
    assert "someone else" in page.find("table", class_="diff").text
    assert _snapshot(session, asset.id) == before and row_counts(session) == counts


def test_duplicate_cloud_resource_id_in_the_form(client, session, login_as):
    arn = "arn:aws:rds:eu-west-1:123456789012:db:orders"
    make_asset(session, name="first", cloud_resource_id=arn)
    login_as("analyst")
    data = form_values(client.get("/assets/new").data, "/assets/new")
    data.update(name="second", engine="postgresql", cloud_resource_id=arn)
    before = row_counts(session)
    response = client.post("/assets/new", data=data)
    assert response.status_code == 422
    _assert_message_at(response.data, "cloud_resource_id", "Another asset already has")
    assert row_counts(session) == before


# --- the service, as the API and the import jobs call it -------------------------------------

def test_unknown_field_is_named(session):
    before = row_counts(session)
    with pytest.raises(ValidationFailed) as caught:
        asset_service.create(session, ACTOR, asset_data(colour="red", hostname="x"))
    assert caught.value.errors == {"colour": "Unknown field.", "hostname": "Unknown field."}
    assert row_counts(session) == before

    asset = make_asset(session)
    with pytest.raises(ValidationFailed) as caught:
        asset_service.update(session, ACTOR, asset.id, {"owner": "x@example.com", "version": 9},
                             expected_version=None)
    assert caught.value.errors == {"version": "Unknown field."}
    session.expire_all()
    assert session.get(Asset, asset.id).owner == "team-a@example.com"


WRONG_TYPES = [
    ("name", 42, "Enter text."),
    ("name", None, "This field is required."),
    ("engine", "PostgreSQL", "Choose one of"),
    ("port", "5432", "Enter a whole number."),
    ("port", 5432.5, "Enter a whole number."),
    ("port", True, "Enter a whole number."),
    ("port", 65536, "from 1 to 65535"),
    ("aliases", "a.example.com,b.example.com", "Enter a list of text values."),
    ("aliases", ["ok.example.com", 7], "Enter a list of text values."),
    ("tags", "pci", "Enter a list of text values."),
    ("tags", ["x" * 65], "at most 64 characters"),
    ("encrypted_at_rest", "yes", "Enter true, false"),
    ("tls_required", 1, "Enter true, false"),
    ("metadata", ["not", "an", "object"], "Enter a JSON object."),
    ("confidence", 1.5, "between 0 and 1"),
    ("confidence", "0.5", "between 0 and 1"),
    ("backup_retention_days", "7", "Enter a whole number."),
    ("last_backup_at", "2026-01-01T00:00:00", "time zone"),
    ("last_backup_at", 1700000000, "time zone"),
    ("environment", 3, "Choose one of"),
]


@pytest.mark.parametrize(("field", "value", "message"), WRONG_TYPES,
                         ids=[f"{f}={v!r}"[:30] for f, v, _ in WRONG_TYPES])
def test_wrong_types_are_rejected_on_create_and_update(session, field, value, message):
    asset = make_asset(session, name="target")
    before = _snapshot(session, asset.id)
    counts = row_counts(session)

    with pytest.raises(ValidationFailed) as caught:
        asset_service.create(session, ACTOR, asset_data(**{field: value}))
    assert set(caught.value.errors) == {field} and message in caught.value.errors[field]

    with pytest.raises(ValidationFailed) as caught:
        asset_service.update(session, ACTOR, asset.id, {"notes": "fine", field: value},
                             expected_version=None)
    assert set(caught.value.errors) == {field} and message in caught.value.errors[field]
    assert row_counts(session) == counts and _snapshot(session, asset.id) == before


def test_duplicate_cloud_resource_id_is_a_field_error(session):
    arn = "arn:aws:rds:eu-west-1:123456789012:db:orders"
    first = make_asset(session, name="first", cloud_resource_id=arn)
    second = make_asset(session, name="second")
    counts = row_counts(session)
    with pytest.raises(ValidationFailed) as caught:
        asset_service.create(session, ACTOR, asset_data(cloud_resource_id=arn))
    assert caught.value.errors == {
        "cloud_resource_id": "Another asset already has this cloud resource id."
    }
    with pytest.raises(ValidationFailed) as caught:
        asset_service.update(session, ACTOR, second.id, {"cloud_resource_id": f"  {arn} "},
                             expected_version=None)
    assert set(caught.value.errors) == {"cloud_resource_id"}
    assert row_counts(session) == counts
    session.expire_all()
    assert session.get(Asset, second.id).cloud_resource_id is None
    # the asset itself may keep (re-save) its own id
    asset_service.update(session, ACTOR, first.id, {"cloud_resource_id": arn, "notes": "n"},
                         expected_version=None)
    assert session.get(Asset, first.id).notes == "n"


def test_a_trashed_asset_still_holds_its_cloud_resource_id(session):
    arn = "arn:aws:rds:eu-west-1:123456789012:db:trashed"
    gone = make_asset(session, name="gone", cloud_resource_id=arn)
    asset_service.delete(session, ACTOR, gone.id)
    with pytest.raises(ValidationFailed) as caught:
        asset_service.create(session, ACTOR, asset_data(cloud_resource_id=arn))
    assert set(caught.value.errors) == {"cloud_resource_id"}


# --- list query parameters --------------------------------------------------------------------

def _cursor(*parts: Any) -> str:
    raw = json.dumps(list(parts)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# a fixed id: pytest-xdist workers must collect the same parameter ids
UNKNOWN_ID = "6f1c2b9e-8d4a-4c3e-a5b7-0e9d8c7b6a51"

BAD_LIST_ARGS = [
    ({"engine": "nope"}, "Engine", "Choose one of"),
    ({"environment": "mars"}, "Environment", "Choose one of"),
    ({"status": "zombie"}, "Status", "Choose one of"),
    ({"criticality": "extreme"}, "Criticality", "Choose one of"),
    ({"data_classification": "secret"}, "Data classification", "Choose one of"),
    ({"stale": "maybe"}, "Stale", "Use true or false"),
    ({"sort": "bogus"}, "Sort", "Sort by one of"),
    ({"sort": "-password"}, "Sort", "Sort by one of"),
    ({"limit": "0"}, "Limit", "from 1 to 200"),
    ({"limit": "abc"}, "Limit", "from 1 to 200"),
    ({"limit": "100000"}, "Limit", "from 1 to 200"),
    ({"after": "garbage"}, "Cursor", "not valid"),
    ({"before": "%%%"}, "Cursor", "not valid"),
    ({"after": _cursor("name", "x")}, "Cursor", "not valid"),
    ({"after": _cursor("name", "x", "not-a-uuid")}, "Cursor", "not valid"),
    ({"after": _cursor("owner", "x", UNKNOWN_ID)}, "Cursor", "not valid"),  # other sort
    ({"after": _cursor("name", {"a": 1}, UNKNOWN_ID)}, "Cursor", "not valid"),
    ({"after": _cursor("name", 5, UNKNOWN_ID)}, "Cursor", "not valid"),
    ({"after": _cursor("name", None, UNKNOWN_ID)}, "Cursor", "not valid"),
    ({"after": _cursor("name", "x", 5)}, "Cursor", "not valid"),
    ({"after": _cursor("name", "x", None)}, "Cursor", "not valid"),
    ({"sort": "criticality", "after": _cursor("criticality", "high", UNKNOWN_ID)},
     "Cursor", "not valid"),
    ({"sort": "updated_at", "after": _cursor("updated_at", "soon", UNKNOWN_ID)},
     "Cursor", "not valid"),
    ({"sort": "updated_at", "after": _cursor("updated_at", 5, UNKNOWN_ID)},
     "Cursor", "not valid"),
    ({"sort": "updated_at", "after": _cursor("updated_at", "2026-01-01T00:00:00",
                                             UNKNOWN_ID)}, "Cursor", "not valid"),
]


@pytest.mark.parametrize(("args", "label", "message"), BAD_LIST_ARGS,
                         ids=[str(a)[:60] for a, _, _ in BAD_LIST_ARGS])
def test_bad_list_parameters_are_422_with_a_message(client, session, login_as, args, label, message):
    make_asset(session, name="present")
    login_as("viewer")
    for headers in ({}, {"HX-Request": "true"}):
        response = client.get("/assets", query_string=args, headers=headers)
        assert response.status_code == 422, response.get_data(as_text=True)[-2000:]
        alert = alert_text(parse(response.data))
        assert label in alert and message in alert
        assert "Traceback" not in response.get_data(as_text=True)


def test_a_good_cursor_still_works_after_the_checks(client, session, login_as):
    for i in range(3):
        make_asset(session, name=f"n{i}", criticality=["low", "high", None][i])
    login_as("viewer")
    for sort in ("name", "-criticality", "updated_at", "owner"):
        first = client.get("/assets", query_string={"sort": sort, "limit": 2})
        nxt = parse(first.data).find("a", rel="next").get("href")
        assert client.get(nxt).status_code == 200


BAD_AUDIT_ARGS = [
    ({"action": "explode"}, "Action", "Unknown action"),
    ({"since": "last tuesday"}, "Since", "YYYY-MM-DD"),
    ({"until": "2026-13-45"}, "Until", "YYYY-MM-DD"),
    ({"before": "x"}, "Before", "whole number"),
    ({"limit": "0"}, "Limit", "from 1 to"),
]


@pytest.mark.parametrize(("args", "label", "message"), BAD_AUDIT_ARGS,
                         ids=[str(a) for a, _, _ in BAD_AUDIT_ARGS])
def test_bad_audit_filters_are_422_with_a_message(client, login_as, args, label, message):
    login_as("viewer")
    response = client.get("/audit", query_string=args)
    assert response.status_code == 422
    alert = alert_text(parse(response.data))
    assert label in alert and message in alert


def test_bad_trash_cursor_is_422(client, login_as):
    login_as("viewer")
    response = client.get("/trash?before=garbage")
    assert response.status_code == 422
    assert "page link is not valid" in response.get_data(as_text=True)


@pytest.mark.parametrize("args", [{"sort": "bogus"}, {"engine": "nope"}, {"limit": "0"}])
def test_bad_trash_filters_are_422_not_silently_ignored(client, login_as, args):
    login_as("viewer")
    response = client.get("/trash", query_string=args)
    assert response.status_code == 422
    assert next(iter(args)).capitalize() in response.get_data(as_text=True)


def test_validation_leaves_no_half_written_asset(session):
    """A failure after some fields are valid leaves no asset, tag or audit row behind."""
    counts = row_counts(session)
    with pytest.raises(ValidationFailed):
        asset_service.create(session, ACTOR, asset_data(tags=["new-tag"], port=0))
    assert row_counts(session) == counts

    assert session.scalar(select(Tag).where(Tag.name == "new-tag")) is None

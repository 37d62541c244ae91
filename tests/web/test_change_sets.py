"""Bulk actions in the browser (SPEC §5): select rows (or every asset a filter matches) on
/assets, choose an action, read the preview, apply it, watch it, undo it."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from tests.factories import ACTOR, make_asset
from tests.web.browser import HTMX
from tests.web.pages import alert_text, in_app_layout, labelled_control, parse
from webapp import jobs
from webapp.models import Asset, AuditEvent, ChangeSet, ChangeSetStatus
from webapp.services import assets as asset_service


def _path(response) -> str:  # type: ignore[no-untyped-def]
    return urlsplit(response.headers.get("Location", "")).path


def _asset(session, asset_id) -> Asset:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(Asset, asset_id)


def _count(session, model) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


def _preview(client, data: dict, query: str = ""):  # type: ignore[no-untyped-def]
    response = client.post(f"/change-sets/new{query}", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)[-2000:]
    return _path(response)


def test_analysts_get_row_checkboxes_and_the_bulk_form(client, session, login_as):
    a = make_asset(session, name="orders-db")
    login_as("analyst")
    page = parse(client.get("/assets?environment=production").data)
    box = page.find("input", type="checkbox", name="ids", value=str(a.id))
    assert box is not None and box.get("form") == "bulk-form"
    form = page.by_id("bulk-form")
    assert form is not None and form.get("action") == "/change-sets/new?environment=production"
    assert labelled_control(page, "Action").tag == "select"
    assert labelled_control(page, "New owner").tag == "input"
    assert labelled_control(page, "New environment").tag == "select"
    assert labelled_control(page, "Tag").tag == "input"
    text = page.text
    assert "Select all on this page" in text and "Select all 1 matching this filter" in text
    assert form.find("input", type="submit", value="Preview change") is not None


def test_viewers_get_no_checkboxes_and_no_bulk_form(client, session, login_as):
    make_asset(session, name="orders-db")
    login_as("viewer")
    page = parse(client.get("/assets").data)
    assert page.find("input", name="ids") is None and page.by_id("bulk-form") is None
    assert client.get("/change-sets/new").status_code == 403


def test_select_rows_preview_apply_and_undo(client, session, login_as):
    a, b, c = (make_asset(session, name=f"db-{n}", environment="production") for n in "abc")
    login_as("analyst")
    location = _preview(client, {"scope": "ids", "ids": [str(a.id), str(b.id)],
                                 "action": "set:environment", "environment": "staging"})
    page = client.get(location)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Preview of a bulk change" in html and "Apply this change" in html
    assert "Will change" in html and "db-a" in html and "staging" in html
    assert _asset(session, a.id).environment.value == "production"  # nothing yet

    response = client.post(f"{location}/apply")
    assert response.status_code == 303 and _path(response) == location
    assert _asset(session, a.id).environment.value == "staging"
    assert _asset(session, b.id).environment.value == "staging"
    assert _asset(session, c.id).environment.value == "production"
    html = client.get(location).get_data(as_text=True)
    assert "Change set #1" in html and "Undo this change" in html and "succeeded" in html

    response = client.post(f"{location}/undo")
    assert response.status_code == 303
    undo_page = client.get(_path(response)).get_data(as_text=True)
    assert "Change set #2" in undo_page and "Undo of change set #1" in undo_page
    assert _asset(session, a.id).environment.value == "production"
    assert "Undone by" in client.get(location).get_data(as_text=True)
    assert client.post(f"{location}/undo").status_code == 409  # once


def test_every_asset_matching_the_filter(client, session, login_as):
    for n in range(3):
        make_asset(session, name=f"pay-{n}", owner="team-a@example.com")
    other = make_asset(session, name="other", owner="team-a@example.com")
    login_as("analyst")
    location = _preview(client, {"scope": "filter", "action": "add_tag", "tag": "PCI"}, "?q=pay-")
    html = client.get(location).get_data(as_text=True)
    assert "every asset matching search = “pay-” (3)" in html
    client.post(f"{location}/apply")
    session.expire_all()
    tagged = session.scalars(select(Asset.name).join(Asset.tags).order_by(Asset.name)).all()
    assert tagged == ["pay-0", "pay-1", "pay-2"]
    assert [t.name for t in _asset(session, other.id).tags] == []


def test_an_asset_edited_after_the_preview_is_listed_not_overwritten(client, session, login_as):
    a, b = make_asset(session, name="db-a"), make_asset(session, name="db-b")
    login_as("analyst")
    location = _preview(client, {"scope": "ids", "ids": [str(a.id), str(b.id)],
                                 "action": "set:owner", "owner": "dba@example.com"})
    asset_service.update(session, ACTOR, b.id, {"owner": "someone@example.com"}, expected_version=None)
    client.post(f"{location}/apply")
    html = client.get(location).get_data(as_text=True)
    assert "Left as they were (1)" in html and "changed since the preview" in html
    assert _asset(session, b.id).owner == "someone@example.com"
    assert _asset(session, a.id).owner == "dba@example.com"


def test_delete_then_undo_restores_from_the_trash(client, session, login_as):
    a = make_asset(session, name="db-a")
    login_as("analyst")
    location = _preview(client, {"scope": "ids", "ids": [str(a.id)], "action": "delete"})
    client.post(f"{location}/apply")
    assert _asset(session, a.id).deleted_at is not None
    client.post(f"{location}/undo")
    assert _asset(session, a.id).deleted_at is None


@pytest.mark.parametrize("data,query,field", [
    ({"scope": "ids", "action": "set:owner", "owner": "x"}, "", "Select at least one asset"),
    ({"scope": "ids", "ids": ["not-an-id"], "action": "set:owner", "owner": "x"}, "", "Not an asset id"),
    ({"scope": "ids", "ids": [str(uuid.uuid4())], "action": "set:owner", "owner": "x"}, "", "No such asset"),
    ({"scope": "ids", "ids": ["{a}"], "action": "set:owner", "owner": " "}, "", "Enter the new owner"),
    ({"scope": "ids", "ids": ["{a}"], "action": "set:environment", "environment": "moon"}, "",
     "Choose one of"),
    ({"scope": "ids", "ids": ["{a}"], "action": "set:name", "owner": "x"}, "", "Choose an action"),
    ({"scope": "ids", "ids": ["{a}"], "action": "add_tag", "tag": ""}, "", "Enter a tag"),
    ({"scope": "ids", "ids": ["{a}"], "action": "add_tag", "tag": "x" * 65}, "", "at most 64"),
    ({"scope": "everything", "action": "delete"}, "", "Choose the selected rows"),
    ({"scope": "filter", "action": "delete"}, "?environment=moon", "Choose one of"),
    ({"scope": "filter", "action": "delete"}, "?q=nothing-matches-this", "No assets match"),
])
def test_bad_input_is_a_422_that_says_why_and_writes_nothing(client, session, login_as, data, query, field):
    a = make_asset(session, name="db-a")
    login_as("analyst")
    data = {k: [v.format(a=a.id) for v in value] if isinstance(value, list) else value
            for k, value in data.items()}
    response = client.post(f"/change-sets/new{query}", data=data)
    assert response.status_code == 422, response.get_data(as_text=True)[-1500:]
    assert field in response.get_data(as_text=True)
    assert in_app_layout(response.data)
    assert _count(session, ChangeSet) == 0


def test_unknown_and_malformed_change_sets_are_404(client, login_as):
    login_as("analyst")
    for path in (f"/change-sets/{uuid.uuid4()}", "/change-sets/not-a-uuid"):
        assert client.get(path).status_code == 404
    assert client.post(f"/change-sets/{uuid.uuid4()}/apply").status_code == 404
    assert client.post("/change-sets/nope/undo").status_code == 404


def test_a_preview_is_applied_once_and_a_preview_is_not_undone(client, session, login_as):
    a = make_asset(session)
    login_as("analyst")
    location = _preview(client, {"scope": "ids", "ids": [str(a.id)], "action": "set:status",
                                 "status": "inactive"})
    assert client.post(f"{location}/undo").status_code == 409
    client.post(f"{location}/apply")
    response = client.post(f"{location}/apply")
    assert response.status_code == 409 and "already applied" in response.get_data(as_text=True)


def test_pages_render_whole_and_as_htmx_fragments(client, session, login_as):
    a = make_asset(session, name="db-a")
    login_as("analyst")
    new = client.get(f"/change-sets/new?ids={a.id}")
    assert new.status_code == 200 and in_app_layout(new.data) and "Bulk change" in new.get_data(as_text=True)
    fragment = client.get(f"/change-sets/new?ids={a.id}", headers=HTMX)
    assert fragment.status_code == 200 and not in_app_layout(fragment.data)
    assert parse(fragment.data).by_id("bulk") is not None
    location = _preview(client, {"scope": "ids", "ids": [str(a.id)], "action": "set:owner", "owner": "x"})
    for url in (location, "/change-sets"):
        whole = client.get(url)
        assert whole.status_code == 200 and in_app_layout(whole.data)
        part = client.get(url, headers=HTMX)
        assert part.status_code == 200 and not in_app_layout(part.data)
        assert part.headers["Vary"] == "HX-Request" or "HX-Request" in part.headers["Vary"]
    client.post(f"{location}/apply")
    poll = client.get(location, headers={**HTMX, "HX-Target": "progress"})
    block = parse(poll.data)
    assert block.by_id("progress") is not None and block.find("h1") is None
    assert block.by_id("progress").get("hx-trigger") is None  # finished: the polling stops
    listing = client.get("/change-sets").get_data(as_text=True)
    assert "Change set #1" in listing and "Set owner to “x”" in listing


def test_a_large_change_runs_as_a_job_with_a_progress_bar(app, client, session, login_as):
    app.config.update(REDIS_URL=None, BULK_INLINE_MAX=2, BULK_BATCH_SIZE=2)
    assets = [make_asset(session, name=f"db-{n}", status="active") for n in range(5)]
    login_as("analyst")
    location = _preview(client, {"scope": "ids", "ids": [str(a.id) for a in assets],
                                 "action": "set:status", "status": "deprecated"})
    response = client.post(f"{location}/apply")
    assert response.status_code == 303
    jobs.wait_for_threads()
    session.expire_all()
    change_set = session.scalar(select(ChangeSet))
    assert change_set.status is ChangeSetStatus.succeeded and change_set.runner == "thread"
    assert (change_set.processed, change_set.changed) == (5, 5)
    assert {_asset(session, a.id).status.value for a in assets} == {"deprecated"}
    events = session.scalar(select(func.count()).select_from(AuditEvent)
                            .where(AuditEvent.change_set_id == change_set.id))
    assert events == 5


def test_a_running_change_set_page_polls(client, session, login_as):
    a = make_asset(session)
    login_as("analyst")
    location = _preview(client, {"scope": "ids", "ids": [str(a.id)], "action": "set:owner", "owner": "x"})
    change_set = session.scalar(select(ChangeSet))
    change_set.status, change_set.number, change_set.total = ChangeSetStatus.running, 7, 10
    change_set.processed = 4
    session.commit()
    page = parse(client.get(location).data)
    progress = page.by_id("progress")
    assert progress is not None and progress.get("hx-trigger") == "every 1s"
    assert page.find("progress").get("value") == "40"
    assert "Undo this change" not in page.text and "Apply this change" not in page.text


def test_the_bulk_form_page_without_javascript_names_the_selection(client, session, login_as):
    a = make_asset(session, name="db-a")
    login_as("analyst")
    page = parse(client.get(f"/change-sets/new?scope=filter&environment=production&ids={a.id}").data)
    assert "The 1 selected asset" in page.text
    assert "Every asset matching environment = “production”" in page.text
    hidden = page.find("input", type="hidden", name="ids")
    assert hidden is not None and hidden.get("value") == str(a.id)
    assert alert_text(page) == ""


def test_flask_audit_verify_is_ok_after_a_bulk_change_and_its_undo(client, session, login_as, runner):
    assets = [make_asset(session, name=f"db-{n}", tags=["old"]) for n in range(4)]
    login_as("analyst")
    ids = [str(a.id) for a in assets]
    for data in ({"action": "set:criticality", "criticality": "critical"},
                 {"action": "remove_tag", "tag": "old"}, {"action": "delete"}):
        location = _preview(client, {"scope": "ids", "ids": ids, **data})
        client.post(f"{location}/apply")
        client.post(f"{location}/undo")
    session.expire_all()
    assert all(a.criticality is None and [t.name for t in a.tags] == ["old"] and a.deleted_at is None
               for a in session.scalars(select(Asset)))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and result.output.startswith("OK:"), result.output


def test_arguments_named_like_url_building_options_are_not_filters(client, session, login_as):
    make_asset(session, name="db-a")
    login_as("analyst")
    for query in ("_scheme=ftp", "_external=1", "_anchor=x", "_method=POST"):
        response = client.get(f"/assets?{query}")
        assert response.status_code == 200, query
        assert parse(response.data).by_id("bulk-form").get("action") == "/change-sets/new"

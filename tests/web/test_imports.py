"""Discovery imports as a person uses them in the browser (SPEC §5 `/imports`, §6): upload each
format through the form, watch the run, read its records, run it again, cancel it, and see the
runs on the dashboard and the sightings on an asset's page.

Runs go to the in-process thread runner (REDIS_URL None): `jobs.wait_for_threads()` waits for
them, so a test reads the run as the page will show it once it has finished.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from tests.factories import make_asset
from tests.web.browser import HTMX, row_counts
from tests.web.pages import field_messages, in_app_layout, labelled_control, parse
from webapp import jobs
from webapp.models import Asset, AuditEvent, ImportRun, ImportStatus
from webapp.models.base import utcnow
from webapp.services import imports
from webapp.services.actor import Actor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "discovery"
FORMATS_NAMED = "inventory-json, csv, nmap-xml, aws-rds-json, gcp-sql-json, azure-json"
CLI = Actor.cli("tester")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def inventory(n: int, *, bad_every: int = 0) -> bytes:
    """An inventory-json file of `n` assets; every `bad_every`-th has an impossible port."""
    assets = []
    for i in range(1, n + 1):
        port = 70000 if bad_every and i % bad_every == 0 else 5432
        assets.append({"name": f"gen-{i:04d}", "engine": "postgresql", "host": f"gen{i}.example.com",
                       "port": port, "environment": "staging"})
    return json.dumps({"source": "generator", "assets": assets}).encode()


@pytest.fixture(autouse=True)
def thread_runner(app):  # type: ignore[no-untyped-def]
    """Run imports on a thread in this process, and let none outlive the test."""
    app.config["REDIS_URL"] = None
    yield
    jobs.wait_for_threads()


def upload(client, data: bytes, filename: str, *, source: str = "", dry_run: bool = False,
           headers=None):  # type: ignore[no-untyped-def]
    form = {"file": (io.BytesIO(data), filename), "source": source}
    if dry_run:
        form["dry_run"] = "y"
    return client.post("/imports", data=form, content_type="multipart/form-data",
                       headers=headers or {})


def run_of(session, response) -> ImportRun:  # type: ignore[no-untyped-def]
    """The run an upload (or retry) redirected to, once its job has finished."""
    assert response.status_code == 303, response.get_data(as_text=True)[-2000:]
    path = urlsplit(response.headers["Location"]).path
    assert path.startswith("/imports/")
    jobs.wait_for_threads()
    session.expire_all()
    run = session.get(ImportRun, uuid.UUID(path.rsplit("/", 1)[1]))
    assert run is not None
    return run


def counts(run: ImportRun) -> dict[str, int]:
    return {name: getattr(run, name)
            for name in ("created", "updated", "unchanged", "flagged", "failed", "skipped")}


def record_rows(html: str | bytes) -> list[dict[str, str]]:
    """The records table as a person reads it: key, outcome, message, asset link."""
    block = parse(html).by_id("records")
    assert block is not None, "no #records block"
    rows = []
    for tr in block.find_all("tr"):
        cells = tr.find_all("td")
        if cells:
            link = cells[3].find("a")
            rows.append({"seq": cells[0].text, "key": cells[1].text, "outcome": cells[2].text,
                         "asset": link.get("href") if link else "", "message": cells[4].text,
                         "changes": cells[5].text})
    return rows


def run_rows(html: str | bytes) -> list[list[str]]:
    block = parse(html).by_id("runs")
    assert block is not None, "no #runs block"
    return [[td.text for td in tr.find_all("td")] for tr in block.find_all("tr") if tr.find_all("td")]


def audit_count(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AuditEvent))


# --- the pages ------------------------------------------------------------------------------

def test_imports_page_offers_the_upload_form_and_an_empty_list(client, login_as):
    login_as("analyst")
    response = client.get("/imports")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert in_app_layout(html)
    page = parse(html)
    nav = page.find("nav", aria_label="Main")
    assert nav is not None and nav.find("a", href="/imports", aria_current="page") is not None
    file_input = labelled_control(page, "Discovery file")
    assert file_input.get("type") == "file"
    assert labelled_control(page, "Source").get("type") == "text"
    dry_run = [lab for lab in page.find_all("label") if lab.text == "Dry run"]
    assert len(dry_run) == 1 and dry_run[0].find("input", type="checkbox") is not None
    form = page.find("form", action="/imports")
    assert form is not None and form.get("enctype") == "multipart/form-data"
    assert form.find("input", type="submit", value="Upload") is not None
    assert form.find("div", class_="drop-zone") is not None
    assert "No imports yet." in page.by_id("runs").text
    # the drop zone's behaviour is a static script, not inline
    assert page.find("script", src="/static/js/imports.js") is not None
    assert not [s for s in page.find_all("script") if not s.get("src")]


def test_imports_list_htmx_request_gets_only_the_runs_block(client, session, login_as):
    imports.create_run(session, CLI, data=fixture("inventory.json"), filename="inventory.json")
    login_as("viewer")
    response = client.get("/imports", headers={**HTMX, "HX-Target": "runs"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and "Discovery file" not in html
    block = parse(html).by_id("runs")
    assert block is not None and "inventory.json" in block.text
    assert "HX-Request" in response.headers.get("Vary", "")


def test_viewer_reads_imports_but_is_not_offered_upload_or_actions(client, session, login_as):
    run = imports.execute(session, imports.create_run(
        session, CLI, data=fixture("nmap_sv.xml"), filename="scan.xml").id)
    login_as("viewer")
    page = parse(client.get("/imports").data)
    assert page.by_id("upload") is None
    assert "scan.xml" in page.by_id("runs").text
    detail = client.get(f"/imports/{run.id}")
    assert detail.status_code == 200
    assert "Run again" not in detail.get_data(as_text=True)
    assert upload(client, fixture("nmap_sv.xml"), "scan.xml").status_code == 403
    assert client.post(f"/imports/{run.id}/retry").status_code == 403
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(ImportRun)) == 1


def test_anonymous_is_sent_to_sign_in(client, make_user):
    make_user("admin")
    for path in ("/imports", f"/imports/{uuid.uuid4()}"):
        response = client.get(path)
        assert response.status_code == 302
        assert urlsplit(response.headers["Location"]).path == "/login"
    response = upload(client, fixture("inventory.json"), "inventory.json")
    assert response.status_code == 302


def test_an_unknown_run_is_a_404_in_the_layout(client, login_as):
    login_as("viewer")
    for path in (f"/imports/{uuid.uuid4()}", "/imports/not-a-uuid"):
        response = client.get(path)
        assert response.status_code == 404
        assert in_app_layout(response.data)


# --- uploading each format --------------------------------------------------------------------

@pytest.mark.parametrize("name,fmt,expected", [
    ("inventory.json", "inventory-json", {"created": 4, "failed": 5}),
    ("cmdb_export.csv", "csv", {"created": 4, "failed": 3}),
    ("nmap_sv.xml", "nmap-xml", {"created": 8, "skipped": 1}),  # the tcpwrapped 3306: a sighting where an asset has it, else skipped
    ("aws_rds_both.json", "aws-rds-json", {"created": 3}),
    ("gcp_sql_instances.json", "gcp-sql-json", {"created": 4, "failed": 1}),
    ("azure_postgres_flexible.json", "azure-json", {"created": 3}),
])
def test_upload_each_format_through_the_form(client, session, login_as, name, fmt, expected):
    user = login_as("analyst")
    response = upload(client, fixture(name), name)
    run = run_of(session, response)
    assert (run.format, run.status, run.runner) == (fmt, ImportStatus.succeeded, "thread")
    # no source given: the file's own (inventory-json has one), else the format's name
    assert run.source == ("cmdb-sync" if name == "inventory.json" else fmt)
    assert run.uploaded_by_label == user.email
    want = {"created": 0, "updated": 0, "unchanged": 0, "flagged": 0, "failed": 0, "skipped": 0}
    assert counts(run) == {**want, **expected}
    assert run.processed == run.total == sum(expected.values())

    page = client.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"Import #{run.number} of “{name}” queued ({fmt})." in html
    progress = parse(html).by_id("progress")
    assert progress.get("hx-trigger") is None  # finished: no polling
    assert "succeeded" in progress.text
    assert progress.find("progress").get("value") == "100"
    assert f"{run.processed} of {run.total} records" in progress.text
    for outcome, n in expected.items():
        shown = progress.find("div", class_=f"outcome outcome-{outcome}")
        assert shown is not None and shown.find("dd").text == str(n)
    rows = record_rows(html)
    assert len(rows) == run.total
    assert sorted({r["outcome"] for r in rows}) == sorted(expected)
    created = [r for r in rows if r["outcome"] == "created"]
    assert all(r["asset"].startswith("/assets/") for r in created)
    if expected.get("failed"):
        errors = parse(html).find("div", class_="row-errors")
        assert errors is not None and f"Row errors ({expected['failed']})" in errors.text


def test_row_errors_say_which_row_and_why(client, session, login_as):
    login_as("analyst")
    run = run_of(session, upload(client, fixture("inventory.json"), "inventory.json"))
    html = client.get(f"/imports/{run.id}").get_data(as_text=True)
    errors = parse(html).find("div", class_="row-errors")
    rows = [[td.text for td in tr.find_all("td")] for tr in errors.find_all("tr") if tr.find_all("td")]
    assert ["5", "json:5", "port 70000 is not a whole number from 1 to 65535."] in rows
    warnings = parse(html).find("div", class_="warnings")
    assert warnings is not None and "rack_unit" in warnings.text


def test_the_same_file_twice_changes_nothing_the_second_time(client, session, login_as):
    login_as("analyst")
    data = fixture("nmap_sv.xml")
    first = run_of(session, upload(client, data, "scan.xml"))
    assets_before, audit_before = row_counts(session)
    assert first.created == 8 and assets_before == 8
    second = run_of(session, upload(client, data, "scan.xml"))
    assert second.number == first.number + 1
    # the tcpwrapped port is skipped again: no asset has its address and port
    assert counts(second) == {"created": 0, "updated": 0, "unchanged": 8, "flagged": 0,
                              "failed": 0, "skipped": 1}
    assert row_counts(session) == (assets_before, audit_before)
    html = client.get(f"/imports/{second.id}").get_data(as_text=True)
    assert {r["outcome"] for r in record_rows(html)} == {"unchanged", "skipped"}


def test_a_dry_run_shows_what_would_happen_and_writes_nothing(client, session, login_as):
    login_as("analyst")
    before = row_counts(session)
    response = upload(client, fixture("aws_rds_both.json"), "rds.json", dry_run=True)
    run = run_of(session, response)
    assert run.dry_run and run.status == ImportStatus.succeeded and run.created == 3
    assert row_counts(session) == before  # no asset, no audit event
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "nothing was written; outcomes show what would happen" in html
    assert "Dry run of “rds.json” queued" in html
    assert [r["outcome"] for r in record_rows(html)] == ["created"] * 3
    assert "dry run" in parse(client.get("/imports").data).by_id("runs").text


def test_source_is_kept_and_a_reserved_one_is_refused_under_its_field(client, session, login_as):
    login_as("analyst")
    run = run_of(session, upload(client, fixture("nmap_sv.xml"), "scan.xml", source="nmap-dc1"))
    assert run.source == "nmap-dc1"
    response = upload(client, fixture("nmap_sv.xml"), "scan.xml", source="manual")
    assert response.status_code == 422
    assert "reserved for changes made by people" in field_messages(parse(response.data), "source")


# --- refused uploads --------------------------------------------------------------------------

def test_a_file_in_no_known_format_is_refused_naming_the_formats(client, session, login_as):
    login_as("analyst")
    response = upload(client, fixture("not_a_discovery_file.txt"), "notes.txt")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert in_app_layout(html)
    page = parse(html)
    assert FORMATS_NAMED in field_messages(page, "file")
    assert labelled_control(page, "Discovery file").get("aria-invalid") == "true"
    assert page.by_id("runs") is not None  # the rest of the page is still there
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(ImportRun)) == 0


def test_a_truncated_json_file_is_refused_with_where_it_broke(client, login_as):
    login_as("analyst")
    response = upload(client, fixture("truncated.json"), "truncated.json")
    assert response.status_code == 422
    assert "Invalid JSON at line" in field_messages(parse(response.data), "file")


def test_no_file_is_refused(client, login_as):
    login_as("analyst")
    response = client.post("/imports", data={"source": "x"}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Choose a discovery file to upload." in field_messages(parse(response.data), "file")
    empty = upload(client, b"", "empty.json")
    assert empty.status_code == 422
    assert field_messages(parse(empty.data), "file")


def test_an_upload_over_the_limit_is_a_413_with_a_clear_message(app, client, session, login_as):
    login_as("analyst")
    app.config["MAX_CONTENT_LENGTH"] = 4096
    response = upload(client, inventory(200), "big.json")
    html = response.get_data(as_text=True)
    assert response.status_code == 413
    assert in_app_layout(html)
    assert f"larger than the limit of {app.config['MAX_UPLOAD_MB']} MB" in html
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(ImportRun)) == 0


def test_billion_laughs_fails_the_run_naming_entities_and_creates_nothing(client, session, login_as):
    login_as("analyst")
    response = upload(client, fixture("nmap_billion_laughs.xml"), "lol.xml")
    run = run_of(session, response)
    assert run.status == ImportStatus.failed
    assert "entit" in run.error and "billion laughs" in run.error
    assert session.scalar(select(func.count()).select_from(Asset)) == 0
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    alert = parse(html).by_id("progress").find("div", role="alert")
    assert alert is not None and "entity declarations are refused" in alert.text
    assert "This import has no records" in parse(html).by_id("records").text


@pytest.mark.parametrize("sent,stored", [
    ("../../etc/passwd", "passwd"),
    ("evil\x00.json", "evil.json"),
])
def test_a_hostile_filename_is_stored_as_a_plain_name(client, session, login_as, sent, stored):
    login_as("analyst")
    run = run_of(session, upload(client, fixture("inventory.json"), sent))
    assert run.filename == stored
    assert run.status == ImportStatus.succeeded  # detected from the content, not the name
    row = run_rows(client.get("/imports").data)[0]
    assert row[1] == stored


# --- watching a run ---------------------------------------------------------------------------

def _queued(session, data: bytes = b"", name: str = "inventory.json") -> ImportRun:  # type: ignore[no-untyped-def]
    return imports.create_run(session, CLI, data=data or fixture(name), filename=name)


def test_the_progress_block_polls_while_unfinished_and_stops_when_finished(client, session, login_as):
    run = _queued(session)
    login_as("viewer")
    url = f"/imports/{run.id}"
    full = parse(client.get(url).data)
    progress = full.by_id("progress")
    assert progress.get("hx-trigger") == "every 1s"
    assert progress.get("hx-get") == url and progress.get("hx-swap") == "outerHTML"
    assert progress.find("progress").get("value") is None  # nothing known yet: indeterminate
    assert "Records appear here as the import writes them." in full.by_id("records").text

    poll = client.get(url, headers={**HTMX, "HX-Target": "progress"})
    html = poll.get_data(as_text=True)
    assert poll.status_code == 200 and "<html" not in html
    block = parse(html).by_id("progress")
    assert block.get("hx-trigger") == "every 1s" and "queued" in block.text
    assert parse(html).by_id("records") is None
    assert "HX-Trigger" not in poll.headers

    # running, half way (as a worker leaves the row between two batches)
    session.execute(
        ImportRun.__table__.update().where(ImportRun.id == run.id).values(
            status=ImportStatus.running, total=9, processed=4, created=3, failed=1,
            heartbeat_at=utcnow(), started_at=utcnow(),
        )
    )
    session.commit()
    block = parse(client.get(url, headers={**HTMX, "HX-Target": "progress"}).data).by_id("progress")
    assert block.get("hx-trigger") == "every 1s"
    assert block.find("progress").get("value") == "44" and "4 of 9 records" in block.text

    session.execute(ImportRun.__table__.update().where(ImportRun.id == run.id)
                    .values(status=ImportStatus.queued, total=0, processed=0, created=0, failed=0))
    session.commit()
    imports.execute(session, run.id)
    last = client.get(url, headers={**HTMX, "HX-Target": "progress"})
    block = parse(last.data).by_id("progress")
    assert block.get("hx-trigger") is None and block.get("hx-get") is None
    assert "succeeded" in block.text and block.find("progress").get("value") == "100"
    # the last poll tells the page to load the records once
    assert last.headers.get("HX-Trigger") == "import-finished"
    records = parse(client.get(url).data).by_id("records")
    assert records.get("hx-trigger") == "import-finished from:body"
    refreshed = client.get(url, headers={**HTMX, "HX-Target": "records"})
    html = refreshed.get_data(as_text=True)
    assert "<html" not in html and parse(html).by_id("progress") is None
    assert len(record_rows(html)) == 9


def test_a_run_whose_worker_died_is_marked_failed_when_viewed(client, session, login_as):
    run = _queued(session)
    session.execute(ImportRun.__table__.update().where(ImportRun.id == run.id).values(
        status=ImportStatus.running, heartbeat_at=utcnow() - timedelta(hours=1)))
    session.commit()
    imports.reap_stale(session)  # as a worker start or `flask maintenance` does (not the GET)
    login_as("viewer")
    html = client.get(f"/imports/{run.id}").get_data(as_text=True)
    progress = parse(html).by_id("progress")
    assert "failed" in progress.text and "stopped responding" in progress.text
    assert progress.get("hx-trigger") is None


def test_the_detail_page_htmx_request_without_a_target_gets_the_run_section(client, session, login_as):
    run = _queued(session)
    login_as("viewer")
    response = client.get(f"/imports/{run.id}", headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    page = parse(html)
    assert page.by_id("run") is not None and f"Import #{run.number}" in page.by_id("run").text
    assert "HX-Request" in response.headers.get("Vary", "")


def test_records_page_on_and_filter_by_outcome(client, session, login_as):
    login_as("analyst")
    run = run_of(session, upload(client, inventory(130, bad_every=10), "gen.json"))
    assert (run.created, run.failed) == (117, 13)
    url = f"/imports/{run.id}"
    html = client.get(url).get_data(as_text=True)
    rows = record_rows(html)
    assert [r["seq"] for r in rows] == [str(i) for i in range(1, 101)]
    nxt = parse(html).by_id("records").find("a", rel="next")
    assert nxt is not None and parse_qs(urlsplit(nxt.get("href")).query) == {"after": ["100"]}
    page2 = client.get(nxt.get("href"), headers={**HTMX, "HX-Target": "records"})
    assert "<html" not in page2.get_data(as_text=True)
    rows2 = record_rows(page2.data)
    assert [r["seq"] for r in rows2] == [str(i) for i in range(101, 131)]
    assert parse(page2.data).by_id("records").find("a", rel="next") is None

    failed = client.get(f"{url}?outcome=failed")
    rows = record_rows(failed.data)
    assert len(rows) == 13 and {r["outcome"] for r in rows} == {"failed"}
    assert all("70000" in r["message"] for r in rows)
    select_ = parse(failed.data).by_id("f-outcome")
    assert [o.get("value") for o in select_.find_all("option") if o.get("selected") is not None] == ["failed"]
    # the counts link to the filtered records
    link = parse(failed.data).by_id("progress").find("a", href=f"{url}?outcome=failed#records")
    assert link is not None and link.text == "13"
    assert "No flagged records" in parse(client.get(f"{url}?outcome=flagged").data).by_id("records").text


@pytest.mark.parametrize("query", ["outcome=exploded", "after=-1", "after=abc", "before=x"])
def test_bad_record_filters_are_a_422(client, session, login_as, query):
    run = _queued(session)
    login_as("viewer")
    path = "/imports" if query.startswith("before") else f"/imports/{run.id}"
    response = client.get(f"{path}?{query}")
    assert response.status_code == 422
    assert in_app_layout(response.data)


def test_updates_show_the_changed_fields(client, session, login_as):
    login_as("analyst")
    first = {"name": "orders", "engine": "postgresql", "host": "orders.example.com", "port": 5432,
             "owner": "team-a"}
    run_of(session, upload(client, json.dumps([first]).encode(), "a.json"))
    second = run_of(session, upload(client, json.dumps([{**first, "owner": "team-b"}]).encode(), "b.json"))
    assert second.updated == 1
    row = record_rows(client.get(f"/imports/{second.id}").data)[0]
    assert row["outcome"] == "updated"
    assert row["changes"] == "Owner : team-a → team-b"  # the version bump is not a field


# --- run again, cancel ------------------------------------------------------------------------

def test_run_again_queues_a_new_run_of_the_same_file(client, session, login_as):
    login_as("analyst")
    first = run_of(session, upload(client, fixture("azure_postgres_flexible.json"), "az.json"))
    html = client.get(f"/imports/{first.id}").get_data(as_text=True)
    assert parse(html).by_id("progress").find("button").text == "Run again"
    again = run_of(session, client.post(f"/imports/{first.id}/retry"))
    assert again.id != first.id and again.retry_of == first.id
    assert (again.filename, again.format, again.status) == ("az.json", "azure-json", ImportStatus.succeeded)
    assert again.unchanged == 3 and again.created == 0


def test_run_again_of_an_unfinished_run_is_refused(client, session, login_as):
    run = _queued(session)
    login_as("analyst")
    response = client.post(f"/imports/{run.id}/retry")
    assert response.status_code == 409
    assert "still running" in response.get_data(as_text=True)


def test_cancel_a_queued_run(client, session, login_as):
    run = _queued(session)
    login_as("analyst")
    html = client.get(f"/imports/{run.id}").get_data(as_text=True)
    cancel = parse(html).by_id("progress").find("form", action=f"/imports/{run.id}/cancel")
    assert cancel is not None and cancel.find("button").text == "Cancel"
    response = client.post(f"/imports/{run.id}/cancel")
    assert response.status_code == 303
    session.expire_all()
    assert session.get(ImportRun, run.id).status == ImportStatus.cancelled
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Import #{run.number} was cancelled before it started." in page
    assert "Run again" in page
    # a finished run cannot be cancelled
    again = client.post(f"/imports/{run.id}/cancel")
    assert again.status_code == 409 and "already finished" in again.get_data(as_text=True)


def test_cancel_a_running_run_asks_it_to_stop_after_its_batch(client, session, login_as):
    run = _queued(session)
    session.execute(ImportRun.__table__.update().where(ImportRun.id == run.id).values(
        status=ImportStatus.running, heartbeat_at=utcnow()))
    session.commit()
    login_as("analyst")
    response = client.post(f"/imports/{run.id}/cancel")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "stops after its current batch" in page
    assert parse(page).by_id("progress").find("button").text == "Cancelling…"


def test_redis_down_runs_in_process_and_says_so(app, client, session, login_as):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    login_as("analyst")
    response = upload(client, fixture("nmap_sv.xml"), "scan.xml")
    run = run_of(session, response)
    assert run.runner == "thread" and run.status == ImportStatus.succeeded
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert jobs.REDIS_UNAVAILABLE in html.replace("&#39;", "'")


# --- the list of runs -------------------------------------------------------------------------

def test_the_list_shows_each_run_and_pages_to_older_ones(client, session, login_as):
    user = login_as("analyst")
    run = run_of(session, upload(client, fixture("cmdb_export.csv"), "cmdb.csv", source="cmdb"))
    row = run_rows(client.get("/imports").data)[0]
    assert row[0] == f"#{run.number}"
    assert row[1:5] == ["cmdb.csv", "csv", "cmdb", "succeeded"]
    assert row[6] == "4 created 3 failed"
    assert row[7] == user.email
    runs = parse(client.get("/imports").data).by_id("runs")
    assert runs.find("a", href=f"/imports/{run.id}") is not None
    assert runs.find("progress").get("value") == "100"

    for i in range(29):
        _queued(session, inventory(1 + i), f"f{i}.json")
    html = client.get("/imports").get_data(as_text=True)
    runs = parse(html).by_id("runs")
    assert len(run_rows(html)) == 25
    assert runs.get("hx-trigger") == "every 2s"  # queued runs on the page: keep it fresh
    older = runs.find("a", rel="next")
    assert older is not None and parse_qs(urlsplit(older.get("href")).query) == {"before": ["6"]}
    page2 = client.get(older.get("href"), headers={**HTMX, "HX-Target": "runs"})
    assert "<html" not in page2.get_data(as_text=True)
    assert [r[0] for r in run_rows(page2.data)] == ["#5", "#4", "#3", "#2", "#1"]
    assert parse(page2.data).by_id("runs").find("a", rel="next") is None
    assert "No older imports." in parse(client.get("/imports?before=1").data).by_id("runs").text


def test_a_list_of_finished_runs_does_not_poll(client, session, login_as):
    login_as("analyst")
    run_of(session, upload(client, fixture("nmap_sv.xml"), "scan.xml"))
    assert parse(client.get("/imports").data).by_id("runs").get("hx-trigger") is None


# --- dashboard and asset page -----------------------------------------------------------------

def test_dashboard_shows_recent_imports(client, session, login_as):
    login_as("viewer")
    dashboard = parse(client.get("/").data).by_id("dashboard")
    assert "Recent imports" in dashboard.text and "No imports yet." in dashboard.text
    runs = [imports.execute(session, _queued(session, name=n).id)
            for n in ("nmap_sv.xml", "aws_rds_both.json")]
    dashboard = parse(client.get("/").data).by_id("dashboard")
    table = dashboard.find("table", class_="data recent-imports")
    rows = [[td.text for td in tr.find_all("td")] for tr in table.find_all("tr") if tr.find_all("td")]
    assert [r[0] for r in rows] == [f"#{runs[1].number}", f"#{runs[0].number}"]
    assert rows[0][1:5] == ["aws_rds_both.json", "aws-rds-json", "succeeded", "3 created"]
    assert table.find("a", href=f"/imports/{runs[0].id}") is not None


def test_an_asset_page_lists_the_imports_that_saw_it(client, session, login_as):
    login_as("analyst")
    first = run_of(session, upload(client, fixture("nmap_sv.xml"), "scan.xml", source="nmap-dc1"))
    second = run_of(session, upload(client, fixture("nmap_sv.xml"), "scan.xml", source="nmap-dc1"))
    created = record_rows(client.get(f"/imports/{first.id}").data)[0]
    page = client.get(created["asset"])
    assert page.status_code == 200
    section = parse(page.data).by_id("sightings")
    assert section is not None and section.find("h2").text == "Sightings"
    rows = [[td.text for td in tr.find_all("td")] for tr in section.find_all("tr") if tr.find_all("td")]
    assert [r[0] for r in rows] == [f"Import #{second.number}", f"Import #{first.number}"]
    assert rows[0][1] == "nmap-dc1 (nmap-xml)"
    assert rows[0][2] == created["key"] and rows[0][2].startswith("nmap:")
    assert [r[3] for r in rows] == ["unchanged", "created"]
    assert section.find("a", href=f"/imports/{first.id}") is not None


def test_an_asset_no_import_saw_says_so(client, session, login_as):
    asset = make_asset(session, name="hand-made")
    login_as("viewer")
    section = parse(client.get(f"/assets/{asset.id}").data).by_id("sightings")
    assert section is not None and "No import has seen this asset yet." in section.text


def test_a_dry_run_is_not_a_sighting(client, session, login_as):
    asset = make_asset(session, name="orders", host="orders.example.com", port=5432)
    login_as("analyst")
    data = json.dumps([{"name": "orders", "engine": "postgresql", "host": "orders.example.com",
                        "port": 5432}]).encode()
    run = run_of(session, upload(client, data, "a.json", dry_run=True))
    assert run.unchanged + run.updated == 1
    section = parse(client.get(f"/assets/{asset.id}").data).by_id("sightings")
    assert "No import has seen this asset yet." in section.text


def test_the_run_page_counts_and_lists_row_warnings(client, session, login_as):
    login_as("analyst")
    csv = b"name,engine,criticality\norders-db,postgresql,bogus\nbilling-db,mysql,extreme\nok-db,mysql,low\n"
    run = run_of(session, upload(client, csv, "cmdb.csv"))
    page = parse(client.get(f"/imports/{run.id}").data)
    block = page.find("div", class_="row-warnings")
    assert block is not None and "Row warnings (2)" in block.text
    rows = [[td.text for td in tr.find_all("td")] for tr in block.find_all("tr") if tr.find_all("td")]
    assert [r[:2] for r in rows] == [["1", "csv:1"], ["2", "csv:2"]]
    assert "bogus" in rows[0][2] and "not recognised; left out" in rows[0][2]
    api = client.get(f"/imports/{run.id}?outcome=created").get_data(as_text=True)
    assert "not recognised; left out" in api  # each record's message in the list


# --- the run page reads as people do ------------------------------------------------------------

def _inventory(*assets: dict) -> bytes:  # type: ignore[type-arg]
    return json.dumps({"source": "cmdb", "assets": list(assets)}).encode()


def test_records_name_their_asset_and_changes_read_plainly(client, session, login_as):
    first = imports.create_run(session, Actor.cli(), filename="a.json", data=_inventory(
        {"name": "orders-primary", "engine": "postgresql", "host": "orders.corp.example", "port": 5432}))
    imports.execute(session, first.id)
    second = imports.create_run(session, Actor.cli(), filename="b.json", data=_inventory(
        {"name": "orders-primary", "engine": "postgresql", "host": "orders.corp.example", "port": 5432,
         "encrypted_at_rest": True, "metadata": {"nmap_cpe": ["cpe:/a:postgresql:postgresql:15"]}}))
    imports.execute(session, second.id)
    login_as("viewer")
    html = client.get(f"/imports/{second.id}").get_data(as_text=True)
    page = parse(html)
    asset = session.scalar(select(Asset).where(Asset.name == "orders-primary"))
    link = page.find("a", href=f"/assets/{asset.id}")
    assert link is not None and link.text == "orders-primary"
    assert "Open asset" not in html
    changes = page.find("ul", class_="changes").text
    assert "Encrypted at rest : — → yes" in changes
    assert "nmap_cpe: cpe:/a:postgresql:postgresql:15" in changes and "['" not in changes


def test_a_dry_run_offers_to_apply_its_file(client, session, login_as):
    data = _inventory({"name": "new-db", "engine": "mysql", "host": "new.corp.example", "port": 3306})
    dry = imports.create_run(session, Actor.cli(), filename="d.json", data=data, dry_run=True)
    imports.execute(session, dry.id)
    login_as("analyst")
    html = client.get(f"/imports/{dry.id}").get_data(as_text=True)
    button = parse(html).find("button", id="apply-file")
    assert button is not None and button.text == "Apply this file"
    token = parse(html).find("form", action=f"/imports/{dry.id}/apply").find("input", name="csrf_token").get("value")
    response = client.post(f"/imports/{dry.id}/apply", data={"csrf_token": token})
    assert response.status_code == 303
    jobs.wait_for_threads()
    session.expire_all()
    applied = session.scalar(select(ImportRun).where(ImportRun.retry_of == dry.id))
    assert applied is not None and applied.dry_run is False and applied.file_id == dry.file_id
    assert session.scalar(select(func.count()).select_from(Asset).where(Asset.name == "new-db")) == 1


def test_a_real_run_has_no_apply_button_and_applying_it_is_refused(client, session, login_as):
    run = imports.create_run(session, Actor.cli(), filename="r.json", data=_inventory(
        {"name": "x-db", "engine": "mysql"}))
    imports.execute(session, run.id)
    login_as("analyst")
    html = client.get(f"/imports/{run.id}").get_data(as_text=True)
    assert parse(html).find("button", id="apply-file") is None
    token = parse(html).find("input", name="csrf_token").get("value")
    assert client.post(f"/imports/{run.id}/apply", data={"csrf_token": token}).status_code == 409

"""/api/v1/imports (SPEC §6, §7): upload a discovery file, follow its run, read its records.

Runs go where production sends them: with REDIS_URL to RQ, finished here by a real RQ
SimpleWorker against the real Redis; without it to a thread of this process. Either way the
test then reads the run through the API, as a client polling it would.
"""

from __future__ import annotations

import uuid
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from rq import Queue
from sqlalchemy import func, select

from tests.api.conftest import assert_problem, field_errors
from tests.conftest import REDIS_URL
from webapp import create_app, jobs
from webapp.discovery import FORMATS
from webapp.extensions import db as _db
from webapp.models import Asset, AuditEvent, ImportRecord, ImportRun

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "discovery"
FINISHED = {"succeeded", "failed", "cancelled"}
SIX = [
    # file, detected format, one record key it must list, that record's outcome
    ("inventory.json", "inventory-json", "json:1", "created"),
    ("cmdb_export.csv", "csv", "csv:1", "created"),
    ("nmap_sv.xml", "nmap-xml", "nmap:10.20.0.5:5432/tcp", "created"),
    ("aws_rds_both.json", "aws-rds-json", "aws_rds:orders-aurora-instance-1", "created"),
    ("gcp_sql_instances.json", "gcp-sql-json", "gcp_sql:acme-prod:billing-pg", "created"),
    ("azure_postgres_flexible.json", "azure-json",
     "azure:/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/"
     "rg-production-flexible-server/providers/microsoft.dbforpostgresql/flexibleservers/"
     "production-flexible-server", "created"),
]
ACCEPTED_FIELDS = {"id", "number", "status", "runner", "notice"}
RUN_FIELDS = {
    "id", "number", "label", "filename", "size", "sha256", "format", "source", "status",
    "dry_run", "runner", "progress", "created", "updated", "unchanged", "flagged", "failed",
    "skipped", "linked", "row_errors", "warned", "row_warnings", "warnings", "error", "uploaded_by", "uploaded_by_label", "retry_of",
    "change_set_id",
    "created_at", "started_at", "finished_at",
}
RECORD_FIELDS = {"seq", "key", "outcome", "asset_id", "conflict_id", "message", "changes"}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(autouse=True)
def no_leftover_jobs(app):  # type: ignore[no-untyped-def]
    """Every run a test starts ends inside that test: the queue starts empty, and no import
    thread outlives the test's database. (Tests may point REDIS_URL elsewhere: not this.)"""
    queue = Queue(jobs.QUEUE, connection=jobs.redis_connection(REDIS_URL)) if REDIS_URL else None
    if queue is not None:
        queue.empty()
    yield
    jobs.wait_for_threads()
    if queue is not None:
        queue.empty()
        queue.connection.close()


@pytest.fixture
def analyst(make_token):  # type: ignore[no-untyped-def]
    return make_token("analyst", name="scanner")


def post(client, headers: dict[str, str], data: bytes | None, filename: str = "upload.json",
         path: str = "/api/v1/imports", **form: str):  # type: ignore[no-untyped-def]
    body: dict[str, Any] = dict(form)
    if data is not None:
        body["file"] = (BytesIO(data), filename)
    return client.post(path, data=body, headers=headers, content_type="multipart/form-data")


def accepted(response) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == ACCEPTED_FIELDS
    assert response.headers["Location"].endswith(f"/api/v1/imports/{body['id']}")
    assert body["status"] == "queued"
    return body


def finish(app, body: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """Let the runner the upload was handed to finish it: a real RQ worker, or the thread."""
    if body["runner"] == "rq":
        jobs.work(app, burst=True, simple=True)
    else:
        jobs.wait_for_threads()


def read_run(client, headers: dict[str, str], run_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.get(f"/api/v1/imports/{run_id}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    run = response.get_json()
    assert set(run) == RUN_FIELDS
    return run


def upload_and_finish(app, client, headers, data: bytes, filename: str, **form: str):  # type: ignore[no-untyped-def]
    body = accepted(post(client, headers, data, filename, **form))
    finish(app, body)
    run = read_run(client, headers, body["id"])
    assert run["status"] in FINISHED, run
    return body, run


def all_records(client, headers, run_id: str, **query: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    response = client.get(f"/api/v1/imports/{run_id}/records", headers=headers,
                          query_string={"limit": 500, **query})
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_json()
    assert page["next_cursor"] is None
    for item in page["items"]:
        assert set(item) == RECORD_FIELDS
    return page["items"]


def count(session, model) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- the six formats, through whichever runner is configured --------------------------------

@pytest.mark.parametrize(("name", "fmt", "key", "outcome"), SIX, ids=[s[0] for s in SIX])
def test_each_format_is_uploaded_run_and_listed(name, fmt, key, outcome, app, client, analyst,
                                                session):
    events = count(session, AuditEvent)  # the user and token were audited
    user_id = str(analyst.user.id)  # read now: the in-process RQ worker ends this session
    body = accepted(post(client, analyst.headers, fixture(name), name))
    assert body["runner"] == ("rq" if REDIS_URL else "thread")
    assert body["notice"] is None
    assert body["number"] == 1
    finish(app, body)

    run = read_run(client, analyst.headers, body["id"])
    assert run["status"] == "succeeded", run["error"]
    assert run["runner"] == body["runner"]
    assert (run["format"], run["filename"], run["number"], run["label"]) == (fmt, name, 1, "import #1")
    assert run["size"] == len(fixture(name)) and run["dry_run"] is False
    assert run["uploaded_by"] == user_id
    assert run["uploaded_by_label"].endswith("(token scanner)")
    total = run["progress"]["total"]
    assert run["progress"] == {"processed": total, "total": total, "percent": 100}
    counted = sum(run[k] for k in ("created", "updated", "unchanged", "flagged", "failed", "skipped"))
    assert counted == total and run["created"] > 0
    assert len(run["row_errors"]) == run["failed"]
    assert run["started_at"] and run["finished_at"] and run["error"] is None

    records = all_records(client, analyst.headers, body["id"])
    assert len(records) == total
    assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)
    by_key = {r["key"]: r for r in records}
    assert by_key[key]["outcome"] == outcome and by_key[key]["asset_id"]
    assert count(session, Asset) == run["created"]
    # one event per asset written, and one on each end of each relationship the file stated
    assert count(session, AuditEvent) == events + run["created"] + run["updated"] + 2 * run["linked"]
    created = session.get(Asset, uuid.UUID(by_key[key]["asset_id"]))
    assert created is not None and created.last_import_id == uuid.UUID(body["id"])


@pytest.mark.parametrize("path", ["/api/v1/imports", "/api/v1/assets/bulk-import"])
def test_thread_runner_without_redis(path, app, client, analyst, session):
    app.config["REDIS_URL"] = None
    body = accepted(post(client, analyst.headers, fixture("nmap_sv.xml"), "scan.xml", path=path))
    assert (body["runner"], body["notice"]) == ("thread", None)
    jobs.wait_for_threads()
    run = read_run(client, analyst.headers, body["id"])
    assert (run["status"], run["runner"], run["created"]) == ("succeeded", "thread", 8)


def test_rq_runner_with_redis(require_redis, app, client, analyst, session):
    body = accepted(post(client, analyst.headers, fixture("aws_rds_both.json"), "rds.json"))
    assert body["runner"] == "rq"
    run = read_run(client, analyst.headers, body["id"])
    assert run["status"] == "queued"  # nothing runs it until a worker does
    assert count(session, Asset) == 0
    jobs.work(app, burst=True, simple=True)
    run = read_run(client, analyst.headers, body["id"])
    assert (run["status"], run["runner"], run["created"]) == ("succeeded", "rq", 3)


def test_unreachable_redis_falls_back_to_a_thread_and_says_so(app, client, analyst, session):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    body = accepted(post(client, analyst.headers, fixture("cmdb_export.csv"), "cmdb.csv"))
    assert body["runner"] == "thread"
    assert "Redis" in body["notice"]
    jobs.wait_for_threads()
    run = read_run(client, analyst.headers, body["id"])
    assert (run["status"], run["runner"]) == ("succeeded", "thread")
    assert run["created"] > 0 and count(session, Asset) == run["created"]


# --- idempotency and dry runs ---------------------------------------------------------------

def test_the_same_file_twice_changes_nothing_the_second_time(app, client, analyst, session):
    first_body, first = upload_and_finish(app, client, analyst.headers, fixture("nmap_sv.xml"), "a.xml")
    assert first["created"] == 8
    events = count(session, AuditEvent)
    versions = {a.id: a.version for a in session.scalars(select(Asset))}

    body, again = upload_and_finish(app, client, analyst.headers, fixture("nmap_sv.xml"), "b.xml")
    assert again["status"] == "succeeded" and again["number"] == first["number"] + 1
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 8)
    records = all_records(client, analyst.headers, body["id"])
    # the tcpwrapped port is skipped both times: no asset has its address and port
    assert {r["outcome"] for r in records} == {"unchanged", "skipped"}
    assert {r["key"]: r["asset_id"] for r in records} == {
        r["key"]: r["asset_id"] for r in all_records(client, analyst.headers, first_body["id"])
    }
    assert count(session, AuditEvent) == events
    session.expire_all()
    assert {a.id: a.version for a in session.scalars(select(Asset))} == versions


@pytest.mark.parametrize("flag", ["true", "1", "on"])
def test_a_dry_run_counts_and_writes_nothing(flag, app, client, analyst, session):
    events = count(session, AuditEvent)
    body, run = upload_and_finish(app, client, analyst.headers, fixture("cmdb_export.csv"),
                                  "cmdb.csv", dry_run=flag)
    assert run["status"] == "succeeded" and run["dry_run"] is True
    assert run["created"] > 0
    assert count(session, Asset) == 0
    assert count(session, AuditEvent) == events
    created = all_records(client, analyst.headers, body["id"], outcome="created")
    assert created and all(r["asset_id"] is None for r in created)  # would-be assets


@pytest.mark.parametrize("flag", ["false", "0"])
def test_dry_run_false_is_a_real_run(flag, app, client, analyst, session):
    _body, run = upload_and_finish(app, client, analyst.headers, fixture("aws_rds_both.json"),
                                   "rds.json", dry_run=flag)
    assert run["dry_run"] is False and count(session, Asset) == run["created"] == 3


def test_source_label_is_recorded(app, client, analyst, session):
    _body, run = upload_and_finish(app, client, analyst.headers, fixture("nmap_sv.xml"),
                                   "scan.xml", source="scanner-7")
    assert run["source"] == "scanner-7"
    session.expire_all()
    assert {a.source for a in session.scalars(select(Asset))} == {"scanner-7"}


# --- who may upload ---------------------------------------------------------------------------

def test_upload_needs_an_analyst_with_a_read_write_token(app, client, make_token, session):
    data = fixture("nmap_sv.xml")
    assert_problem(post(client, {}, data, "scan.xml"), 401)
    body = assert_problem(post(client, make_token("viewer").headers, data, "scan.xml"), 403)
    assert "analyst" in body["detail"]
    body = assert_problem(post(client, make_token("analyst", read_only=True).headers, data,
                               "scan.xml"), 403)
    assert "read-only" in body["detail"]
    assert count(session, ImportRun) == 0
    accepted(post(client, make_token("analyst").headers, data, "scan.xml"))
    assert count(session, ImportRun) == 1


def test_viewers_and_read_only_tokens_read_runs_and_records(app, client, analyst, make_token):
    body, _run = upload_and_finish(app, client, analyst.headers, fixture("nmap_sv.xml"), "scan.xml")
    for reader in (make_token("viewer"), make_token("analyst", read_only=True)):
        assert read_run(client, reader.headers, body["id"])["status"] == "succeeded"
        assert len(all_records(client, reader.headers, body["id"])) == 9  # 8 databases, 1 skipped port
        listed = client.get("/api/v1/imports", headers=reader.headers)
        assert [r["id"] for r in listed.get_json()["items"]] == [body["id"]]
    for path in (f"/api/v1/imports/{body['id']}", f"/api/v1/imports/{body['id']}/records",
                 "/api/v1/imports"):
        assert_problem(client.get(path), 401)


# --- refused uploads --------------------------------------------------------------------------

def test_an_upload_over_the_size_limit_is_a_413_problem(app_config, analyst, session):
    small = create_app({**app_config, "MAX_CONTENT_LENGTH": 2048, "MAX_UPLOAD_MB": 0})
    try:
        client = small.test_client()
        response = post(client, analyst.headers, b"x" * 4096, "big.csv")
        body = assert_problem(response, 413)
        assert "limit" in body["detail"]
        response = post(client, analyst.headers, b"x" * 4096, "big.csv",
                        path="/api/v1/assets/bulk-import")
        assert_problem(response, 413)
        assert count(session, ImportRun) == 0
    finally:
        with small.app_context():
            _db.engine.dispose()


def test_an_unknown_format_is_422_naming_the_formats(client, analyst, session):
    response = post(client, analyst.headers, fixture("not_a_discovery_file.txt"), "notes.txt")
    body = assert_problem(response, 422)
    message = field_errors(body)["file"]
    for name in FORMATS:
        assert name in message
    assert len(FORMATS) == 6
    assert count(session, ImportRun) == 0


def test_truncated_json_is_422_with_line_and_column(client, analyst, session):
    response = post(client, analyst.headers, fixture("truncated.json"), "inventory.json")
    message = field_errors(assert_problem(response, 422))["file"]
    assert "line 50" in message and "column 7" in message
    assert count(session, ImportRun) == 0


@pytest.mark.parametrize(("data", "form", "json"), [
    (None, {}, None),  # no file part at all
    (None, {"file": "inventory.json"}, None),  # a text field named file (curl -F file=x)
    (None, {}, {"file": "inventory.json"}),  # not multipart
    (b"", {}, None),  # an empty file
], ids=["missing", "text-field", "json-body", "empty"])
def test_an_upload_without_a_file_is_422_on_the_file_field(data, form, json, client, analyst,
                                                           session):
    if json is not None:
        response = client.post("/api/v1/imports", json=json, headers=analyst.headers)
    else:
        response = post(client, analyst.headers, data, "inventory.json", **form)
    errors = field_errors(assert_problem(response, 422))
    assert set(errors) == {"file"}, errors
    assert count(session, ImportRun) == 0


@pytest.mark.parametrize(("form", "field"), [
    ({"dry_run": "maybe"}, "dry_run"),
    ({"source": "s" * 101}, "source"),
    ({"source": "bad\x00label"}, "source"),
    ({"source": "manual"}, "source"),
    ({"dryrun": "true"}, "dryrun"),  # a misspelt option is refused, not ignored
])
def test_bad_form_fields_are_422_naming_the_field(form, field, client, analyst, session):
    response = post(client, analyst.headers, fixture("nmap_sv.xml"), "scan.xml", **form)
    assert field in field_errors(assert_problem(response, 422))
    assert count(session, ImportRun) == 0


@pytest.mark.parametrize(("sent", "stored"), [
    ("../../../etc/cron.d/inventory.json", "inventory.json"),
    # Werkzeug's test client does not escape `\\` in the part header and the parser reads `\\W`
    # as an escaped `W`; a client that escapes it is tested below
    ("..\\..\\Windows\\inventory.json", "Windowsinventory.json"),
    ("inven\x00tory.json", "inventory.json"),
    ("/abs/path/\x00\x1f.hidden.json", "hidden.json"),
])
def test_file_names_are_stored_as_plain_names(sent, stored, app, client, analyst, session):
    body = accepted(post(client, analyst.headers, fixture("inventory.json"), sent))
    finish(app, body)
    run = read_run(client, analyst.headers, body["id"])
    assert run["filename"] == stored
    assert not any(c in run["filename"] for c in "/\\\x00") and not stored.startswith(".")
    assert run["status"] == "succeeded" and run["format"] == "inventory-json"


def test_a_windows_path_sent_escaped_is_stored_as_its_last_part(app, client, analyst):
    boundary = "inventory-boundary"
    raw = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; '
        'filename="C:\\\\Users\\\\..\\\\scans\\\\inventory.json"\r\n'
        "Content-Type: application/json\r\n\r\n"
    ).encode() + fixture("inventory.json") + f"\r\n--{boundary}--\r\n".encode()
    response = client.post("/api/v1/imports", data=raw, headers=analyst.headers,
                           content_type=f"multipart/form-data; boundary={boundary}")
    body = accepted(response)
    finish(app, body)
    assert read_run(client, analyst.headers, body["id"])["filename"] == "inventory.json"


def test_billion_laughs_is_accepted_then_fails_without_writing(app, client, analyst, session):
    events = count(session, AuditEvent)
    body = accepted(post(client, analyst.headers, fixture("nmap_billion_laughs.xml"), "lol.xml"))
    finish(app, body)
    run = read_run(client, analyst.headers, body["id"])
    assert run["status"] == "failed"
    assert "entit" in run["error"]
    assert run["progress"]["processed"] == 0 and run["created"] == 0
    assert all_records(client, analyst.headers, body["id"]) == []
    assert count(session, Asset) == count(session, ImportRecord) == 0
    assert count(session, AuditEvent) == events


# --- reading runs and records -----------------------------------------------------------------

def test_records_page_by_cursor_and_filter_by_outcome(app, client, analyst):
    body, run = upload_and_finish(app, client, analyst.headers, fixture("inventory.json"), "inv.json")
    everything = all_records(client, analyst.headers, body["id"])
    assert len(everything) == run["progress"]["total"] == 9

    url = f"/api/v1/imports/{body['id']}/records"
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query: dict[str, Any] = {"limit": 4}
        if cursor:
            query["cursor"] = cursor
        page = client.get(url, headers=analyst.headers, query_string=query).get_json()
        pages += 1
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 4
    assert pages == 3 and seen == everything

    failed = all_records(client, analyst.headers, body["id"], outcome="failed")
    assert len(failed) == run["failed"] == 5
    assert {r["outcome"] for r in failed} == {"failed"} and all(r["message"] for r in failed)
    assert {e["key"] for e in run["row_errors"]} == {r["key"] for r in failed}
    assert all(isinstance(e["row"], int) for e in run["row_errors"])

    default = client.get(url, headers=analyst.headers).get_json()
    assert len(default["items"]) == 9 and default["next_cursor"] is None


@pytest.mark.parametrize("query", [
    {"limit": 0}, {"limit": 501}, {"limit": "ten"}, {"outcome": "exploded"},
    {"cursor": "abc"}, {"cursor": "-1"}, {"cursor": "²"}, {"cursor": "99999999999"},
])
def test_records_query_validation(query, app, client, analyst):
    body, _run = upload_and_finish(app, client, analyst.headers, fixture("nmap_sv.xml"), "a.xml")
    response = client.get(f"/api/v1/imports/{body['id']}/records", headers=analyst.headers,
                          query_string=query)
    assert set(query) <= set(field_errors(assert_problem(response, 422)))


def test_runs_are_listed_newest_first_with_a_cursor(app, client, analyst):
    ids = []
    for name in ("nmap_sv.xml", "aws_rds_both.json", "cmdb_export.csv"):
        body, _run = upload_and_finish(app, client, analyst.headers, fixture(name), name)
        ids.append(body["id"])
    first = client.get("/api/v1/imports?limit=2", headers=analyst.headers).get_json()
    assert [r["id"] for r in first["items"]] == ids[::-1][:2]
    assert first["items"][0]["label"] == "import #3"
    rest = client.get(f"/api/v1/imports?limit=2&cursor={first['next_cursor']}",
                      headers=analyst.headers).get_json()
    assert [r["id"] for r in rest["items"]] == ids[:1] and rest["next_cursor"] is None
    everything = client.get("/api/v1/imports", headers=analyst.headers).get_json()
    assert [r["id"] for r in everything["items"]] == ids[::-1]
    for query in ("limit=101", "limit=0", "cursor=x1", "cursor=99999999999"):
        response = client.get(f"/api/v1/imports?{query}", headers=analyst.headers)
        assert_problem(response, 422)


@pytest.mark.parametrize("run_id", ["0b8a4d7e-3c1f-4e5a-9b2d-6f7e8a9c0d1e", "not-a-uuid", "1"])
def test_an_unknown_run_is_a_404_problem(run_id, client, analyst):
    for path in (f"/api/v1/imports/{run_id}", f"/api/v1/imports/{run_id}/records"):
        assert_problem(client.get(path, headers=analyst.headers), 404)


def test_the_upload_is_documented_as_multipart_with_a_binary_file(client, make_token):
    document = client.get("/api/v1/openapi.json", headers=make_token("viewer").headers).get_json()
    for path in ("/api/v1/imports", "/api/v1/assets/bulk-import"):
        operation = document["paths"][path]["post"]
        body = operation["requestBody"]
        assert body["required"] is True
        assert list(body["content"]) == ["multipart/form-data"]
        assert set(operation["responses"]) == {"202", "401", "403", "413", "422"}
        assert "Location" in operation["responses"]["202"]["headers"]
    schema = document["components"]["schemas"]["ImportUpload"]
    assert schema["required"] == ["file"]
    assert schema["properties"]["file"] == {**schema["properties"]["file"],
                                           "type": "string", "format": "binary"}
    assert schema["properties"]["dry_run"]["type"] == "boolean"
    for path in ("/api/v1/imports/{run_id}", "/api/v1/imports/{run_id}/records"):
        assert "404" in document["paths"][path]["get"]["responses"]

"""The policy pages (SPEC §12): an asset's Policy tab and its exceptions, `/policy` with counts
that open the assets behind them, the `/assets` policy filters, and a framework's report as a
printable page and as CSV."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from tests.factories import make_asset
from tests.web.browser import HTMX
from tests.web.pages import parse
from tests.web.test_assets import result_names
from tests.web.test_query_count import LAYOUT, count_statements  # noqa: F401 (fixture)
from webapp.models import Asset, AuditAction, AuditEvent, PolicyResult
from webapp.models.base import utcnow
from webapp.services import policy_results

GOOD = {"encrypted_at_rest": True, "tls_required": True, "publicly_accessible": False,
        "backup_retention_days": 30, "deletion_protection": True, "criticality": "medium",
        "data_classification": "internal"}


def status_of(session, asset_id, control_id) -> str:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(PolicyResult.status).where(
        PolicyResult.asset_id == asset_id, PolicyResult.control_id == control_id)).value


@pytest.fixture
def inventory(session):  # type: ignore[no-untyped-def]
    made = {
        "good": make_asset(session, name="good-db", engine_version="16.4", **GOOD),
        "plain": make_asset(session, name="plain-db", **{**GOOD, "encrypted_at_rest": False}),
        "bare": make_asset(session, name="bare-db", environment="staging"),
    }
    # good-db was also seen by a discovery import just now: verified and not stale
    now = utcnow()
    session.execute(update(Asset).where(Asset.id == made["good"].id)
                    .values(first_seen_at=now, last_seen_at=now))
    policy_results.touch(session, [made["good"].id])
    session.commit()
    return made


# --- the Policy tab ---------------------------------------------------------------------------

def test_the_policy_tab_lists_failures_first_and_folds_what_does_not_apply(client, login_as, inventory):
    login_as("viewer")
    response = client.get(f"/assets/{inventory['plain'].id}/policy")
    assert response.status_code == 200
    page = parse(response.data)
    rows = page.find("table").find("tbody").find_all("tr")
    first = rows[0].text
    assert "Encrypted at rest" in first and "fail" in first
    assert "SOC 2 CC6.1" in first and "AWS FSBP RDS.3" in first
    assert "failing" in page.by_id("policy-summary").text
    # backup age is checked for high and critical assets only: this one is medium
    assert "Last backup is recent" in page.find("details", class_="not-applicable").text
    # a viewer sees no way to grant
    assert page.find("details", class_="grant") is None
    staging = parse(client.get(f"/assets/{inventory['bare'].id}/policy").data)
    assert "Deletion protection in production" in staging.find("details", class_="not-applicable").text
    partial = client.get(f"/assets/{inventory['plain'].id}/policy", headers=HTMX)
    assert partial.status_code == 200 and b"<html" not in partial.data


def test_a_reviewer_grants_an_exception_from_the_tab(client, session, login_as, inventory):
    login_as("reviewer")
    asset = inventory["plain"]
    tab = parse(client.get(f"/assets/{asset.id}/policy").data)
    assert tab.find("details", class_="grant") is not None
    until = (date.today() + timedelta(days=90)).isoformat()
    response = client.post(f"/assets/{asset.id}/policy/exceptions", data={
        "control": "encryption.at_rest", "reason": "legacy storage, replaced in Q2",
        "expires_on": until})
    assert response.status_code == 303
    assert status_of(session, asset.id, "encryption.at_rest") == "excepted"
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event.action == AuditAction.exception_grant
    shown = client.get(f"/assets/{asset.id}/policy").get_data(as_text=True)
    assert f"Until {until}" in shown and "legacy storage" in shown


@pytest.mark.parametrize(("form", "message"), [
    ({"control": "encryption.at_rest", "reason": "x", "expires_on": "2000-01-01"}, "in the future"),
    ({"control": "encryption.at_rest", "reason": "x",
      "expires_on": (date.today() + timedelta(days=500)).isoformat()}, "at most a year"),
    ({"control": "encryption.at_rest", "reason": "", "expires_on": "2099-01-01"}, "Say why"),
    ({"control": "encryption.at_rest", "reason": "x", "expires_on": "soon"}, "YYYY-MM-DD"),
    ({"control": "backup.deletion_protection", "reason": "x",
      "expires_on": (date.today() + timedelta(days=9)).isoformat()}, "does not apply"),
])
def test_a_bad_exception_is_a_422_that_says_why(client, session, login_as, inventory, form, message):
    login_as("admin")
    asset = inventory["bare"] if form["control"] == "backup.deletion_protection" else inventory["plain"]
    response = client.post(f"/assets/{asset.id}/policy/exceptions", data=form)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert status_of(session, inventory["plain"].id, "encryption.at_rest") == "fail"


# --- /policy and the filters ------------------------------------------------------------------

def test_policy_page_counts_link_to_the_assets_behind_them(client, login_as, inventory):
    login_as("viewer")
    response = client.get("/policy")
    assert response.status_code == 200
    page = parse(response.data)
    soc2 = page.by_id("framework-soc2")
    assert soc2 is not None and "Encrypted at rest" in soc2.text
    link = next(a for a in soc2.find_all("a") if "policy=encryption.at_rest" in (a.get("href") or "")
                and "policy_status=fail" in a.get("href"))
    assert link.text == "1"
    listed = client.get(link.get("href"))
    assert result_names(listed.data) == ["plain-db"]
    assert "Encrypted at rest" in page.by_id("most-failed").text
    assert client.get("/policy", headers=HTMX).status_code == 200


@pytest.mark.parametrize(("query", "names"), [
    ("policy_failing=true", ["bare-db", "plain-db"]),
    ("policy_failing=false", ["good-db"]),
    ("policy=encryption.at_rest", ["plain-db"]),
    ("policy=encryption.at_rest&policy_status=unknown", ["bare-db"]),
    ("policy=encryption.at_rest&policy_status=pass&policy_status=unknown", ["bare-db", "good-db"]),
    ("policy_status=unknown", ["bare-db", "plain-db"]),  # plain-db: no engine version known
])
def test_the_asset_list_filters_by_policy(client, login_as, inventory, query, names):
    login_as("viewer")
    response = client.get(f"/assets?{query}")
    assert response.status_code == 200
    assert result_names(response.data) == names


def test_an_unknown_control_is_a_422_on_the_list(client, login_as):
    login_as("viewer")
    response = client.get("/assets?policy=no.such.control")
    assert response.status_code == 422
    assert "policy control" in response.get_data(as_text=True)


# --- the report -------------------------------------------------------------------------------

def test_the_report_lists_failures_and_exceptions_and_its_csv_matches(client, session, login_as, inventory):
    login_as("reviewer")
    client.post(f"/assets/{inventory['plain'].id}/policy/exceptions", data={
        "control": "encryption.at_rest", "reason": "=risk accepted by the CISO",
        "expires_on": (date.today() + timedelta(days=30)).isoformat()})
    page = client.get("/policy/frameworks/soc2/report")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "SOC 2" in text and "risk accepted by the CISO" in text and "plain-db" in text
    response = client.get("/policy/frameworks/soc2/report.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.data
    assert body.startswith(codecs.BOM_UTF8)
    rows = list(csv.DictReader(io.StringIO(body[len(codecs.BOM_UTF8):].decode())))
    excepted = [r for r in rows if r["control_id"] == "encryption.at_rest"]
    assert [(r["asset"], r["status"]) for r in excepted] == [("plain-db", "excepted")]
    assert excepted[0]["exception_reason"] == "'=risk accepted by the CISO"  # formula-safe
    assert {r["status"] for r in rows} <= {"fail", "excepted"}
    assert client.get("/policy/frameworks/nope/report").status_code == 404


# --- query counts -----------------------------------------------------------------------------

# the Policy tab: the asset + its tags + its results + its live exceptions (one query each)
POLICY_TAB_QUERIES = LAYOUT + 4
# /policy: the latest re-evaluation run; the results counted by control and status (one grouped
# count) come from the counts cache after the warm-up request, until a commit writes results
POLICY_PAGE_QUERIES = LAYOUT + 1


@pytest.mark.parametrize("n", [1, 12])
def test_policy_pages_query_counts_do_not_grow(session, login_as, count_statements, n):  # noqa: F811
    assets = [make_asset(session, name=f"q-{i}", **{**GOOD, "encrypted_at_rest": i % 2 == 0})
              for i in range(n)]
    login_as("viewer")
    assert count_statements(f"/assets/{assets[0].id}/policy") == POLICY_TAB_QUERIES
    assert count_statements("/policy") == POLICY_PAGE_QUERIES


def test_the_list_links_keep_the_policy_filter(client, login_as, inventory):
    login_as("viewer")
    page = parse(client.get("/assets?policy=encryption.at_rest&policy_status=fail&sort=name").data)
    header = page.find("thead").find("a")
    assert parse_qs(urlsplit(header.get("href")).query)["policy"] == ["encryption.at_rest"]


# --- parameters -------------------------------------------------------------------------------

def test_an_admin_changes_a_parameter_and_every_asset_is_re_evaluated(app, client, session, login_as,
                                                                      inventory):
    from webapp import jobs

    app.config["REDIS_URL"] = None  # the job runs on a thread of this process, waited for below
    login_as("admin")
    page = parse(client.get("/admin/settings").data)
    field = page.by_id("param-backup-retention-min_days_medium")
    assert field is not None and field.get("value") == "3"
    response = client.post("/admin/settings/policy", data={"backup.retention:min_days_medium": "60"})
    assert response.status_code == 303 and urlsplit(response.headers["Location"]).path == "/policy"
    jobs.wait_for_threads()
    assert status_of(session, inventory["good"].id, "backup.retention") == "fail"  # 30 < 60
    shown = parse(client.get("/policy").data).by_id("policy-run").text
    assert "succeeded" in shown and "policy parameters changed" in shown
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())
                            .where(AuditEvent.action == AuditAction.settings_change)).first()
    assert event.changes["policy_parameters"][1] == {"backup.retention": {"min_days_medium": 60}}


@pytest.mark.parametrize(("value", "message"), [("-1", "between 1 and 3650"), ("many", "whole number")])
def test_a_parameter_out_of_range_is_a_422_naming_it(client, session, login_as, value, message):
    login_as("admin")
    response = client.post("/admin/settings/policy", data={"backup.retention:min_days_medium": value})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "backup.retention.min_days_medium" in body and message in body

"""The asset's Sources tab (SPEC §5): per field, the current value, who set it and when, and
every other source's last value, marked where it differs; a constant number of statements."""

from __future__ import annotations

import json

import pytest

from tests.factories import make_asset
from tests.imports.helpers import assets, run_file
from tests.web.test_query_count import LAYOUT, count_statements  # noqa: F401
from webapp.services import assets as asset_service
from webapp.services.actor import Actor

HOST = "orders.abc.eu-west-1.rds.amazonaws.com"
SOURCES_QUERIES = LAYOUT + 4  # the asset, its tags, its observations (runs and people joined), settings


def aws_file(version: str, owner: str) -> str:
    return json.dumps({"DBInstances": [{
        "DBInstanceIdentifier": "orders", "Engine": "postgres", "EngineVersion": version,
        "DBInstanceArn": "arn:aws:rds:eu-west-1:123456789012:db:orders",
        "Endpoint": {"Address": HOST, "Port": 5432},
        "DBInstanceStatus": "available", "TagList": [{"Key": "owner", "Value": owner}],
    }]})


def nmap_file(version: str) -> str:
    return (
        '<?xml version="1.0"?>\n<nmaprun scanner="nmap" args="nmap -sV" version="7.94">'
        '<host><status state="up"/><address addr="10.0.0.9" addrtype="ipv4"/>'
        f'<hostnames><hostname name="{HOST}" type="PTR"/></hostnames><ports>'
        '<port protocol="tcp" portid="5432"><state state="open"/>'
        f'<service name="postgresql" product="PostgreSQL DB" version="{version}" method="probed" conf="10"/>'
        "</port></ports></host></nmaprun>\n"
    )


def three_sources(session):  # type: ignore[no-untyped-def]
    """An asset the cloud, a scanner and the CMDB all reported, disagreeing on two fields."""
    aws = run_file(session, aws_file("15.4", "payments"), "rds.json")
    run_file(session, nmap_file("15.5"), "scan.xml")
    cmdb = run_file(session, "name,engine,version,host,port,owner\n"
                    f"orders,postgresql,15,{HOST},5432,payments-team@example.com\n", "cmdb.csv")
    [asset] = assets(session)
    return asset, aws, cmdb


def test_the_sources_tab_shows_who_says_what(session, login_as, client):
    asset, aws, cmdb = three_sources(session)
    login_as("viewer")
    response = client.get(f"/assets/{asset.id}/sources")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'aria-current="page">Sources</a>' in page
    row = page.split('id="source-engine_version"', 1)[1].split("</tr>", 1)[0]
    # the winner: the cloud's version, with its run linked
    assert "15.4" in row and ">aws<" in row and f">import #{aws.number}</a>" in row
    # the scanner's version differs; the CMDB's `15` is the same version, less precise
    nmap_part = row.split(">nmap<", 1)[1].split("</li>", 1)[0]
    assert "differs" in nmap_part and "15.5" in nmap_part
    csv_part = row.split(">csv<", 1)[1].split("</li>", 1)[0]
    assert "agrees" in csv_part
    owner = page.split('id="source-owner"', 1)[1].split("</tr>", 1)[0]
    assert "payments-team@example.com" in owner and f">import #{cmdb.number}</a>" in owner
    assert "payments" in owner.split(">aws<", 1)[1]


def test_the_sources_tab_names_the_person_who_set_a_value(session, login_as, client):
    asset, _aws, _cmdb = three_sources(session)
    user = login_as("analyst")
    asset_service.update(session, Actor(user_id=user.id, label=user.email), asset.id, {"owner": "payments-team"},
                         expected_version=None)
    owner = client.get(f"/assets/{asset.id}/sources").get_data(as_text=True).split('id="source-owner"', 1)[1]
    owner = owner.split("</tr>", 1)[0]
    assert ">manual<" in owner and user.email in owner
    # the CMDB's mailbox is the same owner as the team: not marked as differing
    assert "agrees" in owner.split(">csv<", 1)[1].split("</li>", 1)[0]


def test_an_asset_no_source_reported_has_an_empty_state(session, login_as, client):
    asset = make_asset(session, name="hand-made")  # the system actor: no report kept
    login_as("viewer")
    page = client.get(f"/assets/{asset.id}/sources").get_data(as_text=True)
    assert "No source has reported this asset yet" in page


def test_the_sources_tab_renders_alone_for_htmx(session, login_as, client):
    asset, _aws, _cmdb = three_sources(session)
    login_as("viewer")
    response = client.get(f"/assets/{asset.id}/sources", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body and 'id="source-owner"' in body
    assert "HX-Request" in response.headers["Vary"]


@pytest.mark.parametrize("sources", [1, 3])
def test_sources_query_count(session, login_as, count_statements, sources):  # noqa: F811
    run_file(session, aws_file("15.4", "payments"), "rds.json")
    if sources > 1:
        run_file(session, nmap_file("15.5"), "scan.xml")
        run_file(session, f"name,engine,host,port,owner\norders,postgresql,{HOST},5432,dba\n", "cmdb.csv")
    [asset] = assets(session)
    login_as("viewer")
    assert count_statements(f"/assets/{asset.id}/sources") == SOURCES_QUERIES

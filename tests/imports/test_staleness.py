"""Honest staleness (SPEC §6): absence counts only from a scan that covered the asset, an
asset no discovery saw is unverified, and an open port nmap could not fingerprint is a sighting
of what is already known there."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select, update

from tests.imports.helpers import outcomes, records, run_file
from webapp.models import Asset, AuditEvent, ImportRun
from webapp.models.base import utcnow
from webapp.policy import Context
from webapp.policy.facts import AssetFacts
from webapp.policy.lifecycle import NotStale
from webapp.services import asset_search, imports
from webapp.services import assets as asset_service
from webapp.services.actor import Actor


def scan(*ports: tuple[str, int, str], args: str = "nmap -sV -p 1-1024,3306,5432 10.7.0.0/24",
         services: str = "1-1024,3306,5432", down: tuple[str, ...] = ()) -> bytes:
    """An nmap -oX file: (address, port, service name) open ports, and down hosts."""
    hosts: dict[str, list[str]] = {}
    for address, port, name in ports:
        product = ' product="PostgreSQL DB" version="16.2"' if name == "postgresql" else ""
        hosts.setdefault(address, []).append(
            f'<port protocol="tcp" portid="{port}"><state state="open" reason="syn-ack"/>'
            f'<service name="{name}"{product} method="probed" conf="10"/></port>')
    body = "".join(
        f'<host><status state="up"/><address addr="{a}" addrtype="ipv4"/><ports>{"".join(p)}</ports></host>'
        for a, p in hosts.items())
    body += "".join(f'<host><status state="down"/><address addr="{a}" addrtype="ipv4"/></host>' for a in down)
    return (f'<?xml version="1.0"?>\n<!DOCTYPE nmaprun>\n<nmaprun scanner="nmap" args="{args}" version="7.94">'
            f'<scaninfo type="syn" protocol="tcp" numservices="1" services="{services}"/>{body}</nmaprun>').encode()


def seen_filter(session, seen: str, now=None) -> list[str]:  # type: ignore[no-untyped-def]
    """Names of the live assets `seen=<seen>` lists (`now`: as if the list were read then)."""
    cutoff = (now or utcnow()) - timedelta(days=30)
    stmt = select(Asset.name).where(Asset.deleted_at.is_(None),
                                    asset_search.seen_condition(Asset, seen, cutoff))
    return sorted(session.scalars(stmt))


def get(session, asset_id) -> Asset:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(Asset, asset_id)


def first_asset(session, run: ImportRun, key: str):  # type: ignore[no-untyped-def]
    return next(r.asset_id for r in records(session, run) if r.key == key)


def test_a_covering_scan_that_misses_an_asset_makes_it_stale_after_the_days(session):
    first = run_file(session, scan(("10.7.0.5", 5432, "postgresql"), ("10.7.0.6", 5432, "postgresql")), "a.xml")
    gone = first_asset(session, first, "nmap:10.7.0.6:5432/tcp")
    assert first.coverage["tcp_ports"] == "1-1024,3306,5432" and first.missed == 0
    # the next scan covers 10.7.0.0/24 and port 5432 again, and 10.7.0.6 no longer answers
    second = run_file(session, scan(("10.7.0.5", 5432, "postgresql")), "b.xml")
    assert second.missed == 1
    missed_at = get(session, gone).missed_since
    assert missed_at is not None and second.started_at <= missed_at <= second.finished_at
    assert get(session, first_asset(session, first, "nmap:10.7.0.5:5432/tcp")).missed_since is None
    event = session.scalars(select(AuditEvent).where(AuditEvent.entity_id == str(second.id))).all()
    assert any(e.changes == {"missed": [None, 1]} for e in event)
    # not stale yet; stale once missed for stale_after_days (30)
    assert seen_filter(session, "stale") == []
    later = missed_at + timedelta(days=31)
    assert seen_filter(session, "stale", now=later) == ["10.7.0.6:5432"]
    assert seen_filter(session, "fresh", now=later) == ["10.7.0.5:5432"]
    facts = AssetFacts.from_asset(get(session, gone))
    assert NotStale().check(facts, Context.build(later, {}, stale_after_days=30)).status.value == "fail"
    soon = missed_at + timedelta(days=29)
    assert NotStale().check(facts, Context.build(soon, {}, stale_after_days=30)).status.value == "pass"
    # a third miss keeps the first miss's date; a sighting clears it
    run_file(session, scan(("10.7.0.5", 5432, "postgresql"), ("10.7.0.5", 22, "ssh")), "c.xml")
    assert get(session, gone).missed_since == missed_at
    run_file(session, scan(("10.7.0.6", 5432, "postgresql"), ("10.7.0.5", 5432, "postgresql")), "d.xml")
    assert get(session, gone).missed_since is None
    assert seen_filter(session, "stale", now=later) == []


def test_absence_from_a_scan_that_did_not_cover_the_asset_counts_for_nothing(session):
    first = run_file(session, scan(("10.7.0.5", 5432, "postgresql"), ("10.7.0.6", 3306, "mysql")), "a.xml")
    pg = first_asset(session, first, "nmap:10.7.0.5:5432/tcp")
    my = first_asset(session, first, "nmap:10.7.0.6:3306/tcp")
    # another network; then the same network but another port list
    other_net = run_file(session, scan(("10.8.0.5", 5432, "postgresql"), args="nmap -sV -p 5432 10.8.0.0/24",
                                       services="5432"), "b.xml")
    other_ports = run_file(session, scan(("10.7.0.9", 5432, "postgresql"), args="nmap -sV -p 5432 10.7.0.0/24",
                                         services="5432"), "c.xml")
    assert other_net.missed == 0
    assert other_ports.missed == 1  # 10.7.0.5:5432 was covered; 10.7.0.6:3306 was not
    assert get(session, pg).missed_since is not None
    assert get(session, my).missed_since is None
    # long unseen, but no covering scan missed it: fresh, not stale
    session.execute(update(Asset).where(Asset.id == my).values(last_seen_at=utcnow() - timedelta(days=90)))
    session.commit()
    later = utcnow() + timedelta(days=40)
    assert "10.7.0.6:3306" in seen_filter(session, "fresh", now=later)
    assert "10.7.0.6:3306" not in seen_filter(session, "stale", now=later)


def test_a_down_host_listed_in_the_scan_is_covered(session):
    first = run_file(session, scan(("10.7.0.5", 5432, "postgresql")), "a.xml")
    asset_id = first_asset(session, first, "nmap:10.7.0.5:5432/tcp")
    # only the host itself was a target, and it was down
    second = run_file(session, scan(("10.9.9.9", 22, "ssh"), args="nmap -sV -p 5432 10.7.0.5 10.9.9.9",
                                    services="5432", down=("10.7.0.5",)), "b.xml")
    assert second.missed == 1 and get(session, asset_id).missed_since is not None


def test_never_seen_by_discovery_is_unverified_not_stale(session):
    manual = asset_service.create(session, Actor.cli(), {"name": "by-hand", "engine": "postgresql",
                                                         "host": "10.7.0.5", "port": 5432})
    assert seen_filter(session, "unverified") == ["by-hand"]
    later = utcnow() + timedelta(days=400)
    assert seen_filter(session, "stale", now=later) == []
    # a covering scan that does not see it does not mark what was never seen
    run = run_file(session, scan(("10.7.0.9", 5432, "postgresql")), "a.xml")
    assert run.missed == 0 and get(session, manual.id).missed_since is None


def test_an_unfingerprinted_port_on_a_known_endpoint_is_a_sighting(session):
    known = asset_service.create(session, Actor.cli(), {"name": "orders", "engine": "mysql",
                                                        "host": "10.7.0.5", "port": 3306})
    version = known.version
    run = run_file(session, scan(("10.7.0.5", 3306, "tcpwrapped"), ("10.7.0.5", 3307, "unknown"),
                                 ("10.7.0.8", 5432, "tcpwrapped")), "a.xml")
    assert outcomes(session, run) == {"nmap:10.7.0.5:3306/tcp": "unchanged",
                                      "nmap:10.7.0.5:3307/tcp": "skipped",
                                      "nmap:10.7.0.8:5432/tcp": "skipped"}
    assert session.scalar(select(func.count()).select_from(Asset)) == 1  # never creates
    asset = get(session, known.id)
    assert asset.engine.value == "mysql" and asset.version == version  # confirmed, not changed
    assert asset.last_seen_at is not None
    assert [s.key for s in imports.sightings(session, known.id)] == ["nmap:10.7.0.5:3306/tcp"]
    assert seen_filter(session, "unverified") == []
    assert seen_filter(session, "fresh") == ["orders"]


def test_a_sighting_keeps_an_asset_from_going_stale(session):
    first = run_file(session, scan(("10.7.0.5", 5432, "postgresql")), "a.xml")
    asset_id = first_asset(session, first, "nmap:10.7.0.5:5432/tcp")
    run_file(session, scan(("10.7.0.9", 22, "ssh")), "b.xml")
    assert get(session, asset_id).missed_since is not None
    again = run_file(session, scan(("10.7.0.5", 5432, "tcpwrapped")), "c.xml")
    assert outcomes(session, again) == {"nmap:10.7.0.5:5432/tcp": "unchanged"}
    assert get(session, asset_id).missed_since is None and again.missed == 0


def rds(*instances: tuple[str, str]) -> bytes:
    return json.dumps({"DBInstances": [
        {"DBInstanceIdentifier": name, "Engine": "postgres", "DBInstanceStatus": "available",
         "DBInstanceArn": f"arn:aws:rds:{region}:123456789012:db:{name}",
         "Endpoint": {"Address": f"{name}.abc.{region}.rds.amazonaws.com", "Port": 5432}}
        for name, region in instances]}).encode()


def test_a_cloud_listing_covers_its_account_and_region(session):
    first = run_file(session, rds(("orders", "eu-west-1"), ("billing", "eu-west-1"), ("dr", "us-east-1")),
                     "rds.json")
    assert sorted(map(tuple, first.coverage["scopes"])) == [
        ("aws", "123456789012", "eu-west-1", "db"), ("aws", "123456789012", "us-east-1", "db")]
    ids = {r.key: r.asset_id for r in records(session, first)}
    second = run_file(session, rds(("orders", "eu-west-1")), "rds-eu.json")
    assert second.missed == 1  # billing; dr is in a region this listing did not cover
    assert get(session, ids["aws_rds:billing"]).missed_since is not None
    assert get(session, ids["aws_rds:dr"]).missed_since is None
    assert get(session, ids["aws_rds:orders"]).missed_since is None

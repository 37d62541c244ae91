"""The import's identification step (webapp.services.pipeline.decide) on its own: records,
candidate states and key hits built in memory, no database (SPEC §6 "Matching")."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from webapp.discovery import DiscoveredRecord
from webapp.services import identifiers, matching
from webapp.services.pipeline.decide import Decider
from webapp.services.pipeline.items import Decision, Item, prepare

AUTO_MERGE, REVIEW = 0.90, 0.60  # the settings' defaults
ARN = "arn:aws:rds:eu-west-1:1:db:orders-prod"
A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))  # ids sort A < B < C


def item(fields: dict[str, Any], *, ips: tuple[str, ...] = (), bridged: tuple[str, ...] = ()) -> Item:
    """A record as the pipeline prepares it, with the keys `Lookup.expand` gives it
    (`bridged`: names FQDN↔IP bridges add)."""
    it = prepare(1, DiscoveredRecord(key="rec-1", fields=fields, warnings=[], ip_addresses=list(ips)))
    it.all_names = list(dict.fromkeys([*it.names, *it.ips, *bridged]))
    it.endpoint_keys = [identifiers.endpoint_key(n, fields.get("port")) for n in it.all_names]
    it.block_keys = identifiers.blocking_keys(fields, it.all_names)
    return it


def asset(asset_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    """An asset's state as `Lookup.load_light` gives it."""
    state: dict[str, Any] = dict.fromkeys(
        ("name", "engine", "host", "port", "database_name", "cloud_resource_id", "environment"))
    state.update(aliases=[], _id=asset_id, _deleted_at=None, _light=True)
    state.update(fields)
    return state


def hits(*states: dict[str, Any]) -> dict[str, set[uuid.UUID]]:
    """The identifier table of these assets: every key to the assets it names."""
    found: dict[str, set[uuid.UUID]] = {}
    for state in states:
        for key in identifiers.keys_for(state):
            found.setdefault(key, set()).add(state["_id"])
    return found


def identify(
    it: Item, *states: dict[str, Any], decider: Decider | None = None,
    fp_hits: dict[str, tuple[uuid.UUID, int | None]] | None = None,
) -> Decision:
    decider = decider or Decider(AUTO_MERGE, REVIEW)
    return decider.identify(it, hits(*states), fp_hits or {}, {s["_id"]: s for s in states})


ORDERS = {"name": "orders-db", "engine": "postgresql", "host": "orders-db.corp.example.com",
          "port": 5432, "database_name": "orders"}


# --- strong identifiers -----------------------------------------------------------------------

def test_the_same_cloud_id_wins_over_an_endpoint_match():
    by_cloud = asset(A, name="orders (prod)", engine="postgresql", host="10.9.9.9", port=5432,
                     cloud_resource_id=ARN)
    by_endpoint = asset(B, **ORDERS)
    record = item({**ORDERS, "cloud_resource_id": ARN})
    decision = identify(record, by_cloud, by_endpoint)
    assert (decision.asset_id, decision.how, decision.flag) == (A, "cloud", None)
    # the endpoint's asset is the same database by the record's evidence: a reviewer is asked
    assert [(other, score.strong) for other, score in decision.duplicates] == [(B, True)]


def test_a_single_strong_endpoint_match_merges_above_the_auto_merge_threshold():
    record = item({**ORDERS, "host": "ORDERS-DB.corp.example.com.", "name": "orders"})
    decision = identify(record, asset(A, **ORDERS), asset(B, **{**ORDERS, "port": 5433}))
    assert (decision.asset_id, decision.how, decision.flag, decision.skip) == (A, "endpoint", None, None)
    assert decision.duplicates == []  # the other port is not the record's endpoint


def test_an_address_bridged_to_the_host_is_the_same_endpoint():
    record = item({"name": "x", "engine": "postgresql", "host": "10.0.0.7", "port": 5432},
                  bridged=("orders-db.corp.example.com",))
    decision = identify(record, asset(A, **ORDERS))
    assert (decision.asset_id, decision.how) == (A, "endpoint")


def test_a_single_strong_match_below_the_auto_merge_threshold_is_flagged():
    strict = Decider(0.99, REVIEW)
    decision = identify(item({**ORDERS, "name": "something else"}), asset(A, **ORDERS), decider=strict)
    assert decision.asset_id is None
    assert decision.flag is not None and decision.flag[0] == A
    assert decision.flag[1].strong and decision.flag[1].confidence == pytest.approx(matching.ENDPOINT)


def test_two_strong_matches_are_told_apart_by_the_database_name():
    # two databases on one endpoint: the server's own (no database name) and "billing"
    server = asset(A, **{**ORDERS, "database_name": None, "name": "server"})
    billing = asset(B, **{**ORDERS, "database_name": "billing", "name": "billing"})
    named = identify(item({**ORDERS, "database_name": "billing", "name": "x"}), server, billing)
    assert (named.asset_id, named.how, named.flag) == (B, "endpoint", None)
    without = {key: value for key, value in ORDERS.items() if key != "database_name"}
    unnamed = identify(item({**without, "name": "x"}), server, billing)
    assert (unnamed.asset_id, unnamed.how, unnamed.flag) == (A, "endpoint", None)


def test_a_replica_never_merges_with_its_primary():
    linked = Decider(AUTO_MERGE, REVIEW, {("orders-replica", "orders-db")})
    decision = identify(item({**ORDERS, "name": "orders-replica"}), asset(A, **ORDERS), decider=linked)
    assert decision == Decision()  # vetoed: created as its own asset


def test_two_databases_on_one_endpoint_and_no_database_name_is_ambiguous():
    orders = asset(A, **ORDERS)
    billing = asset(B, **{**ORDERS, "database_name": "billing", "name": "billing-db"})
    record = item({key: value for key, value in ORDERS.items() if key != "database_name"})
    decision = identify(record, billing, orders)
    assert decision.asset_id is None and decision.flag is not None
    asset_id, score = decision.flag
    assert asset_id == A  # the first by id: neither is known by the record's own host
    assert score.reasons[-1] == "ambiguous: the endpoint matches 2 assets (“orders-db”, “billing-db”)"


def test_two_strong_matches_shown_to_be_one_database_update_the_one_named_by_the_record():
    by_name = asset(A, name="orders-a", engine="postgresql", host="db2.example.com", port=5432,
                    aliases=["10.0.0.5"])
    by_host = asset(B, name="orders-b", engine="postgresql", host="10.0.0.5", port=5432)
    record = item({"name": "x", "engine": "postgresql", "host": "10.0.0.5", "port": 5432})
    decision = identify(record, by_name, by_host)
    assert (decision.asset_id, decision.how) == (B, "endpoint")  # its host is the record's own
    assert [other for other, _ in decision.duplicates] == [A]


# --- an identical record seen before, and weak evidence ---------------------------------------

def test_an_identical_record_seen_before_finds_its_asset():
    record = item({"name": "orders", "engine": "postgresql"})
    assert record.fingerprint is not None
    state = asset(A, name="renamed since", engine="postgresql")
    decision = identify(record, state, fp_hits={record.fingerprint: (A, 3)})
    assert (decision.asset_id, decision.how) == (A, "fingerprint")


def test_weak_evidence_never_merges_it_creates_and_asks_a_reviewer():
    # a short host name without a port, the same name and database: weak evidence only
    record = item({"name": "orders-db", "engine": "postgresql", "host": "orders-db",
                   "database_name": "orders"})
    decision = identify(record, asset(A, **ORDERS))
    assert decision.asset_id is None and decision.flag is None
    assert decision.link is not None
    asset_id, score = decision.link
    assert asset_id == A and score.level == "weak" and not score.strong
    assert score.confidence < AUTO_MERGE


def test_shared_name_tokens_are_found_by_their_blocking_key_and_only_asked_about():
    cmdb = asset(A, name="Billing DB", engine="postgresql", engine_version="16",
                 host="pgbill01.corp.example.com", port=5432)
    record = item({"name": "prod-billing-pg", "engine": "postgresql", "engine_version": "16.2",
                   "host": "billing.corp.example.com", "port": 5432})
    assert "tok:billing" in record.block_keys and A in hits(cmdb)["tok:billing"]
    decision = identify(record, cmdb)
    assert decision.asset_id is None and decision.link is not None and decision.link[0] == A


def test_evidence_of_no_level_creates_without_asking():
    record = item({"name": "invoices", "engine": "postgresql", "host": "other.example.com",
                   "port": 5432, "database_name": "orders"})
    state = asset(A, **ORDERS)
    [(candidate, score)] = Decider(AUTO_MERGE, REVIEW).scores(record, [A], {A: state})
    assert candidate == A and score.level is None and 0 < score.confidence < REVIEW
    assert identify(record, state) == Decision()


def test_medium_evidence_with_a_corroboration_merges():
    record = item({"name": "x", "engine": "postgresql", "engine_version": "16.1", "host": "orders-db",
                   "port": 5432})
    decision = identify(record, asset(A, **ORDERS, engine_version="16"))
    assert (decision.asset_id, decision.how) == (A, "medium")


def test_medium_evidence_alone_goes_to_review_and_never_creates():
    record = item({"name": "x", "engine": "postgresql", "host": "orders-db", "port": 5432})
    # below the review threshold too: medium evidence is never created as a new asset
    decision = identify(record, asset(A, **ORDERS), decider=Decider(AUTO_MERGE, 0.89))
    assert decision.asset_id is None and decision.link is None
    assert decision.flag is not None and decision.flag[0] == A and decision.flag[1].level == "medium"


def test_medium_evidence_for_two_assets_goes_to_review():
    record = item({"name": "x", "engine": "postgresql", "engine_version": "16", "host": "orders-db",
                   "port": 5432})
    one = asset(A, **ORDERS, engine_version="16.1")
    other = asset(B, **{**ORDERS, "host": "orders-db.other.example.com"}, engine_version="16.2")
    decision = identify(record, one, other)
    assert decision.asset_id is None and decision.flag is not None
    assert "ambiguous: medium evidence for 2 assets" in decision.flag[1].reasons


def test_assets_a_record_names_strongly_by_its_own_names_merge_into_the_match():
    by_ip = asset(A, name="legacy", engine="postgresql", host="10.0.0.5", port=5432, _light=False)
    by_name = asset(B, name="db01", engine="postgresql", host="db01.example.com", port=5432, _light=False)
    record = item({"name": "x", "engine": "postgresql", "host": "10.0.0.5", "port": 5432,
                   "aliases": ["db01.example.com"]}, ips=("10.0.0.5",))
    decision = identify(record, by_ip, by_name)
    assert (decision.asset_id, decision.how) == (A, "endpoint")
    assert decision.absorb == [B] and decision.duplicates == []
    # a version that cannot be the same installation leaves it to a reviewer
    older = asset(B, name="db01", engine="postgresql", host="db01.example.com", port=5432,
                  engine_version="9.6", _light=False)
    versioned = identify(item({"name": "x", "engine": "postgresql", "host": "10.0.0.5", "port": 5432,
                               "aliases": ["db01.example.com"], "engine_version": "16.1"},
                              ips=("10.0.0.5",)), by_ip, older)
    assert versioned.asset_id == A and versioned.absorb == []


def test_an_address_reused_by_another_server_is_told_apart_by_the_version():
    retired = asset(A, name="claims", engine="postgresql", engine_version="10", host="oslpgs03.example.com",
                    aliases=["10.0.0.31"], port=5432)
    current = asset(B, name="dwh", engine="postgresql", engine_version="16", host="osldwh01.example.com", port=5432)
    record = item({"name": "x", "engine": "postgresql", "engine_version": "16.2", "host": "10.0.0.31",
                   "aliases": ["osldwh01.example.com"], "port": 5432}, ips=("10.0.0.31",))
    decision = identify(record, retired, current)
    assert (decision.asset_id, decision.how) == (B, "endpoint")
    assert decision.absorb == [] and decision.duplicates == []  # the retired one is not asked about


def test_a_trashed_candidate_is_not_flagged_on_weak_evidence():
    record = item({"name": "orders-db", "engine": "postgresql", "host": "orders-db",
                   "database_name": "orders"})
    trashed = asset(A, **ORDERS, _deleted_at="2024-01-01")
    assert identify(record, trashed) == Decision()

"""Relationships (webapp/services/relationships.py): the rules of a link, the audit trail on both
assets, moving links on a merge and a purge, and the graph walks: direction by dependency,
depth, cycles, caps and `truncated`, impact order and depends_on cycle detection."""

from __future__ import annotations

import itertools
import json
import uuid

import pytest
from sqlalchemy import select

from tests.factories import ACTOR, make_asset
from webapp.models import Asset, AssetRelationship, AuditAction, AuditEvent, RelationshipKind
from webapp.services import assets, audit, relationships
from webapp.services.errors import InvalidState, NotFound, ValidationFailed

DEPENDS = RelationshipKind.depends_on


def link(session, source: Asset, target: Asset, kind: str = "depends_on") -> AssetRelationship:  # type: ignore[no-untyped-def]
    return relationships.create(session, ACTOR, source_id=source.id, target_id=target.id, kind=kind)


def chain(session, n: int, **fields) -> list[Asset]:  # type: ignore[no-untyped-def]
    """a0 depends on a1 depends on a2 … (a0 is the most downstream)."""
    made = [make_asset(session, name=f"node-{i:02d}", **fields) for i in range(n)]
    for here, there in itertools.pairwise(made):
        link(session, here, there)
    return made


def link_events(session, asset: Asset) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(
        select(AuditEvent).where(AuditEvent.entity_id == str(asset.id),
                                 AuditEvent.action.in_([AuditAction.link, AuditAction.unlink]))
        .order_by(AuditEvent.id)))


def names(graph: relationships.Graph) -> dict[str, tuple[int, str]]:
    return {n.asset.name: (n.depth, n.side) for n in graph.nodes}


# --- the rules of a link ----------------------------------------------------------------------

def test_a_link_is_audited_on_both_assets_and_leaves_their_versions_alone(session):
    app_db, orders = make_asset(session, name="app-db"), make_asset(session, name="orders-db")
    rel = relationships.create(session, ACTOR, source_id=app_db.id, target_id=orders.id,
                               kind="depends_on", description="  reads the orders schema ")
    assert rel.description == "reads the orders schema"
    assert (rel.dependent_id, rel.provider_id) == (app_db.id, orders.id)
    for asset in (app_db, orders):
        [event] = link_events(session, asset)
        assert event.action == AuditAction.link
        assert event.message == "app-db depends on orders-db"
        assert event.changes["relationship"][0] is None
        assert event.changes["relationship"][1]["id"] == str(rel.id)
        assert event.changes["relationship"][1]["kind"] == "depends_on"
        assert session.get(Asset, asset.id).version == 1
    assert audit.verify(session).ok


def test_the_same_link_twice_is_refused_but_the_reverse_or_another_kind_is_not(session):
    a, b = make_asset(session), make_asset(session)
    link(session, a, b)
    with pytest.raises(InvalidState, match="already depends on"):
        link(session, a, b)
    link(session, b, a)  # a cycle of two: allowed, and flagged elsewhere
    link(session, a, b, "feeds")
    assert len(session.scalars(select(AssetRelationship)).all()) == 3


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"target": "self"}, "target_id", "cannot be linked to itself"),
    ({"kind": "loves"}, "kind", "Choose one of: depends_on, replicates_to"),
    ({"target": "nonsense"}, "target_id", "Choose an asset"),
    ({"target": "00000000-0000-0000-0000-000000000000"}, "target_id", "no such asset"),
    ({"description": "x" * 501}, "description", "At most 500"),
])
def test_bad_links_are_refused_with_the_field_named(session, change, field, message):
    a, b = make_asset(session), make_asset(session)
    target = {"self": a.id, None: b.id}.get(change.get("target"), change.get("target"))
    with pytest.raises(ValidationFailed) as caught:
        relationships.create(session, ACTOR, source_id=a.id, target_id=target,
                             kind=change.get("kind", "depends_on"),
                             description=change.get("description"))
    assert message in caught.value.errors[field]
    assert session.scalars(select(AssetRelationship)).all() == []
    assert link_events(session, a) == []


def test_an_asset_in_the_trash_cannot_be_linked(session):
    a, b = make_asset(session), make_asset(session, name="old-db")
    assets.delete(session, ACTOR, b.id)
    with pytest.raises(ValidationFailed) as caught:
        link(session, a, b)
    assert "“old-db” is in the trash" in caught.value.errors["target_id"]


def test_removing_a_link_is_audited_on_both_assets(session):
    a, b = make_asset(session, name="app-db"), make_asset(session, name="orders-db")
    rel = link(session, a, b, "backs_up_to")
    relationships.delete(session, ACTOR, rel.id)
    assert session.scalars(select(AssetRelationship)).all() == []
    for asset in (a, b):
        last = link_events(session, asset)[-1]
        assert last.action == AuditAction.unlink
        assert last.message == "app-db backs up to orders-db"
        assert last.changes["relationship"][1] is None
    with pytest.raises(NotFound):
        relationships.delete(session, ACTOR, rel.id)


def test_a_merge_moves_links_to_the_survivor_and_drops_self_links_and_repeats(session):
    survivor, other = make_asset(session, name="orders"), make_asset(session, name="orders-old")
    app, backup = make_asset(session, name="app"), make_asset(session, name="vault")
    link(session, app, survivor)
    link(session, app, other)  # would repeat app → survivor
    link(session, other, backup, "backs_up_to")  # moves
    link(session, other, survivor, "replicates_to")  # would be a self-link
    moved = relationships.move(session, ACTOR, other.id, survivor.id)
    session.commit()
    assert moved == 1
    rels = {(r.source_id, r.target_id, r.kind) for r in session.scalars(select(AssetRelationship))}
    assert rels == {(app.id, survivor.id, DEPENDS),
                    (survivor.id, backup.id, RelationshipKind.backs_up_to)}
    assert [e.action for e in link_events(session, backup)][-2:] == [AuditAction.unlink, AuditAction.link]
    assert "merged into orders" in link_events(session, survivor)[-1].message


def test_purging_an_asset_removes_its_links_and_tells_the_other_end(session):
    a, b = make_asset(session, name="app"), make_asset(session, name="gone")
    link(session, a, b)
    assets.delete(session, ACTOR, b.id)
    assets.purge(session, ACTOR, b.id)
    assert session.scalars(select(AssetRelationship)).all() == []
    last = link_events(session, a)[-1]
    assert (last.action, last.message) == (AuditAction.unlink, "app depends on gone (purged)")


def test_listing_filters_by_kind_asset_name_and_origin_and_pages_by_cursor(session):
    a, b, c = (make_asset(session, name=n) for n in ("alpha", "beta", "gamma"))
    link(session, a, b)
    link(session, b, c, "feeds")
    link(session, a, c, "backs_up_to")
    page = relationships.listing(session, limit=2)
    assert len(page.items) == 2 and page.next_cursor is not None
    rest = relationships.listing(session, limit=2, after=page.next_cursor)
    assert len(rest.items) == 1 and rest.next_cursor is None
    seen = {r.id for r, _, _ in page.items + rest.items}
    assert len(seen) == 3
    assert [r.kind for r, _, _ in relationships.listing(session, kind=RelationshipKind.feeds).items] == [
        RelationshipKind.feeds]
    assert len(relationships.listing(session, q="GAM").items) == 2
    assert len(relationships.listing(session, asset_id=a.id).items) == 2
    assert relationships.listing(session, origin="discovered").items == []
    assets.delete(session, ACTOR, c.id)
    assert len(relationships.listing(session).items) == 1  # links to the trash are hidden


def test_of_asset_lists_both_directions_with_the_other_end(session):
    a, b, c = (make_asset(session, name=n) for n in ("app", "orders", "feeder"))
    link(session, a, b)
    link(session, c, a, "feeds")
    links = relationships.of_asset(session, a.id)
    assert [(link.other.name, link.outgoing, link.phrase) for link in links] == [
        ("orders", True, "depends on"), ("feeder", False, "← feeds")]


# --- walking the graph ------------------------------------------------------------------------

def test_down_is_what_depends_on_an_asset_and_up_is_what_it_depends_on(session):
    a = chain(session, 5)  # node-00 → node-01 → … → node-04
    down = relationships.graph(session, a[4].id, direction="down", depth=2)
    assert names(down) == {"node-04": (0, "self"), "node-03": (1, "down"), "node-02": (2, "down")}
    assert not down.truncated
    assert {(e.source_id, e.target_id) for e in down.edges} == {(a[3].id, a[4].id), (a[2].id, a[3].id)}
    up = relationships.graph(session, a[0].id, direction="up", depth=3)
    assert names(up) == {"node-00": (0, "self"), "node-01": (1, "up"), "node-02": (2, "up"),
                         "node-03": (3, "up")}
    both = relationships.graph(session, a[2].id, direction="both", depth=1)
    assert names(both) == {"node-02": (0, "self"), "node-01": (1, "down"), "node-03": (1, "up")}


@pytest.mark.parametrize(("kind", "provider_is_source"), [
    ("depends_on", False), ("backs_up_to", False), ("member_of", False),
    ("replicates_to", True), ("feeds", True),
])
def test_each_kind_reads_as_dependent_and_provider(session, kind, provider_is_source):
    source, target = make_asset(session, name="source"), make_asset(session, name="target")
    link(session, source, target, kind)
    provider, dependent = (source, target) if provider_is_source else (target, source)
    assert [a.name for a, _ in relationships.impact(session, provider.id).assets] == [dependent.name]
    assert relationships.impact(session, dependent.id).assets == []


def test_a_cycle_ends_the_walk_and_marks_nodes_reached_both_ways(session):
    a, b, c = (make_asset(session, name=n) for n in ("a", "b", "c"))
    link(session, a, b)
    link(session, b, c)
    link(session, c, a)
    g = relationships.graph(session, a.id, direction="both", depth=10)
    assert names(g) == {"a": (0, "self"), "b": (1, "both"), "c": (1, "both")}
    assert not g.truncated
    assert len(g.edges) == 3


def test_the_node_cap_keeps_the_nearest_and_says_truncated(session):
    hub = make_asset(session, name="hub")
    near = [make_asset(session, name=f"near-{i}") for i in range(3)]
    for asset in near:
        link(session, asset, hub)
    far = make_asset(session, name="far")
    link(session, far, near[0])
    g = relationships.graph(session, hub.id, direction="down", depth=5, limit=3)
    assert g.truncated
    assert sorted(names(g)) == ["hub", "near-0", "near-1", "near-2"]
    assert not relationships.graph(session, hub.id, direction="down", depth=5, limit=4).truncated


def test_a_depth_past_the_maximum_is_capped_and_truncated_only_when_more_lies_beyond(session):
    long = chain(session, relationships.MAX_DEPTH + 3)
    g = relationships.graph(session, long[-1].id, direction="down", depth=1000)
    assert g.depth == relationships.MAX_DEPTH
    assert g.truncated
    assert max(n.depth for n in g.nodes) == relationships.MAX_DEPTH
    short = relationships.graph(session, long[relationships.MAX_DEPTH - 1].id, direction="down", depth=1000)
    assert not short.truncated and len(short.nodes) == relationships.MAX_DEPTH


def test_the_walk_neither_shows_nor_passes_through_an_asset_in_the_trash(session):
    a = chain(session, 3)
    assets.delete(session, ACTOR, a[1].id)
    assert names(relationships.graph(session, a[2].id, direction="down", depth=5)) == {
        "node-02": (0, "self")}


@pytest.mark.parametrize(("direction", "depth", "limit", "field"), [
    ("sideways", 2, 10, "direction"), ("up", 0, 10, "depth"), ("up", 2, 0, "limit"),
    ("up", 2, relationships.NODE_LIMIT + 1, "limit"),
])
def test_bad_graph_requests_are_refused(session, direction, depth, limit, field):
    a = make_asset(session)
    with pytest.raises(ValidationFailed) as caught:
        relationships.graph(session, a.id, direction=direction, depth=depth, limit=limit)
    assert field in caught.value.errors


def test_impact_is_most_critical_first_then_nearest(session):
    db = make_asset(session, name="db")
    low = make_asset(session, name="reporting", criticality="low")
    crit = make_asset(session, name="payments", criticality="critical")
    unknown = make_asset(session, name="wiki", criticality=None)
    high_far = make_asset(session, name="checkout", criticality="high")
    link(session, low, db)
    link(session, unknown, db)
    link(session, crit, low)  # two levels away, but critical
    link(session, high_far, crit)
    impact = relationships.impact(session, db.id)
    assert [(a.name, d) for a, d in impact.assets] == [
        ("payments", 2), ("checkout", 3), ("reporting", 1), ("wiki", 1)]
    assert not impact.truncated


def test_depends_on_cycles_are_found_and_other_kinds_do_not_count(session):
    a, b, c, d = (make_asset(session, name=n) for n in ("a", "b", "c", "d"))
    link(session, a, b)
    link(session, b, c)
    ab_closing = link(session, c, a)
    link(session, c, d)
    link(session, d, c, "feeds")  # d → c feeds means c depends on d: not a depends_on cycle
    assert [x.name for x in relationships.cycle_members(session, a.id)] == ["b", "c"]
    assert relationships.cycle_members(session, d.id) == []
    assert relationships.closes_cycle(session, ab_closing)
    relationships.delete(session, ACTOR, ab_closing.id)
    assert relationships.cycle_members(session, a.id) == []


# --- the graph as JSON ------------------------------------------------------------------------

@pytest.mark.parametrize(("direction", "depth", "limit"), [
    ("both", 2, 500), ("both", 5, 500), ("up", 3, 500), ("down", 4, 500), ("both", 1000, 500),
    ("both", 5, 3), ("down", 2, 1), ("up", 1000, 4),
])
def test_graph_json_is_the_graph_serialised(session, direction, depth, limit):
    """On PostgreSQL `graph_json` builds the answer in one statement; it must say exactly what
    `graph()` says (elsewhere it is `graph()` serialised)."""
    hub = make_asset(session, name="hub")
    long = chain(session, relationships.MAX_DEPTH + 3)  # deeper than the cap
    link(session, long[-1], hub)
    spokes = [make_asset(session, name=f"spoke-{i}") for i in range(4)]
    for spoke in spokes:
        link(session, spoke, hub)
    link(session, hub, spokes[0], "feeds")  # spoke-0 is reached both ways: a cycle
    link(session, spokes[1], spokes[2], "backs_up_to")  # an edge between two nodes of one level
    provider = make_asset(session, name="Provider")
    link(session, hub, provider, "member_of")
    gone = make_asset(session, name="gone")
    link(session, gone, hub)
    link(session, make_asset(session, name="behind-gone"), gone)
    assets.delete(session, ACTOR, gone.id)

    for start in (hub, long[0], long[-1], spokes[0], provider):
        expected = relationships.graph_dict(relationships.graph(
            session, start.id, direction=direction, depth=depth, limit=limit))
        answer = json.loads(relationships.graph_json(
            session, start.id, direction=direction, depth=depth, limit=limit))
        assert answer["truncated"] == expected["truncated"], start.name
        assert {k: answer[k] for k in ("root", "direction", "depth")} == {
            k: expected[k] for k in ("root", "direction", "depth")}
        if expected["truncated"]:  # which of several equally near assets is kept may differ
            assert len(answer["nodes"]) == len(expected["nodes"])
            assert answer["nodes"][0] == expected["nodes"][0]
            assert sorted(n["depth"] for n in answer["nodes"]) == sorted(
                n["depth"] for n in expected["nodes"])
        else:
            assert answer["nodes"] == expected["nodes"], start.name
            assert answer["edges"] == expected["edges"], start.name


def test_graph_json_of_an_unknown_asset_is_not_found(session):
    with pytest.raises(NotFound):
        relationships.graph_json(session, uuid.uuid4())

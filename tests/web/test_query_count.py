"""Pinned SQL statement counts for the list pages (as NetBox keeps a baseline per view).

A page must issue the same number of statements whatever the number of rows it shows; a change
that adds a query per row (an N+1, e.g. a lazy relationship read in a template) fails here. If a
change adds a query on purpose, update the baseline and say why in its comment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, update

from tests.conftest import TEST_DATABASE_URL
from tests.factories import ACTOR, make_asset
from tests.review_factories import duplicate_assets, field_conflict, make_run, possible_duplicate
from tests.web.pages import parse
from webapp.models import Conflict, RelationshipKind
from webapp.services import assets as asset_service
from webapp.services import cached_counts, conflicts, imports, relationships
from webapp.services.actor import Actor

# Every signed-in page starts with 1 statement: the session row joined to its user. Its layout's
# figures come from the counts cache after the warm-up request (services/cached_counts.py): the
# person's unread notifications on the header's bell (one capped count on (user_id, read_at)
# when computed) and the open count of the review queue beside "Review queue" in the main
# navigation (the dashboard's "open conflicts" panel reuses it; one indexed count).
LAYOUT = 1
LAYOUT_COLD = LAYOUT + 2
# /assets: the page of assets (limit+1 rows) with their tags: on PostgreSQL one statement (each
# row's tags as an array of pairs), elsewhere the tags in a second one. The count (capped, and
# past the cap the planner's estimate) comes from the counts cache, per filter, after the
# warm-up request; a searched page's planner estimate, which sizes its walk, too.
ASSET_LIST_QUERIES = LAYOUT + (1 if TEST_DATABASE_URL else 2)
# /trash: the same two queries as /assets, on deleted assets.
TRASH_QUERIES = LAYOUT + 2
# /audit: one keyset page of events (limit+1 rows) + the names of the assets and users they
# are about (one query, never one per row).
AUDIT_QUERIES = LAYOUT + 2
# /assets/<id>/history: the asset (the columns its header shows; not its tags) + its events
# (one query, newest first).
HISTORY_QUERIES = LAYOUT + 2
# /assets/<id>: the asset + its tags + its sightings (one join of records and runs) + its
# proposed changes waiting for approval (one query, at most two rows: "1 change waiting").
DETAIL_QUERIES = LAYOUT + 4
# /: (1) every count, in one pass grouped by engine, environment, criticality and status: live
# assets, the trash, stale, unverified and unowned production ones (FILTER clauses) + (2) the
# stale_after_days setting (the stale cutoff) + (3) the 10 latest changes + (4) the names of the
# assets they touched (one IN query) + (5) the 5 latest imports. The open review items reuse the
# layout's count. (Was LAYOUT + 8: one query per grouping and one for the trash.) The policy
# panels add (6) the results counted by control and status and (7) the 90 days of snapshots.
DASHBOARD_COLD_QUERIES = LAYOUT_COLD + 7
# (1) and (6) come from the counts cache once computed (dropped by any commit that writes
# assets or policy results): a warm load reads the setting (which names the cached counts), the
# latest changes, their assets' names, the latest imports and the snapshots.
DASHBOARD_QUERIES = LAYOUT + 5
# an admin's dashboard also shows the last backup (the backup task's schedule and latest run)
DASHBOARD_ADMIN_QUERIES = DASHBOARD_QUERIES + 2
# /imports: one keyset page of runs (limit+1 rows); the uploader's name is kept on the run,
# not looked up per row. (No stale-run reaper: the worker and `flask maintenance` reap.)
IMPORTS_QUERIES = LAYOUT + 1
# /imports/<id>: the run + one keyset page of its records + the names of the assets they name
# (one query; none when no record on the page names an asset, e.g. only failed records) + the
# finished run's change set (what `Undo this import` reverses, or the undo that did).
IMPORT_DETAIL_QUERIES = LAYOUT + 4
IMPORT_DETAIL_WITHOUT_ASSETS_QUERIES = LAYOUT + 3
# /conflicts: one keyset page of items joined to their candidate's and duplicate's names and
# their import's number (no lookup per row); filtering by import number adds its lookup. Each
# row's differing values: the page's candidate and duplicate assets (one IN query) + their tags
# (one selectin query). The unfiltered queue's first page also lists the open proposed changes
# with their assets' names (one query); a filtered one does not.
CONFLICTS_QUERIES = LAYOUT + 4
CONFLICTS_FILTERED_QUERIES = LAYOUT + 3
CONFLICTS_BY_IMPORT_QUERIES = LAYOUT + 4
# an empty queue reads no assets (but its proposed changes).
CONFLICTS_EMPTY_QUERIES = LAYOUT + 2
# /conflicts/<id> of an incoming record: the item + the candidate + its tags + the import run +
# the previous and next open items (one query of two subqueries) + the auto-merge threshold (the
# page says why the item was not merged).
CONFLICT_DETAIL_QUERIES = LAYOUT + 6
# two existing assets: the duplicate and its tags as well, but no import run.
CONFLICT_PAIR_QUERIES = CONFLICT_DETAIL_QUERIES + 1
# a resolved item: its resolver's name as well.
CONFLICT_RESOLVED_QUERIES = CONFLICT_DETAIL_QUERIES + 1
# /assets/<id>/relationships: the asset + its tags + its links joined to their other ends (one
# query) + the import numbers of discovered links (one IN query) + the depends_on walks both
# ways (a cycle check, one statement) + the impact walk downstream + those assets. Tags of
# other assets are not loaded (not shown). The graph is not drawn from the page: the browser
# fetches graph.json.
RELATIONSHIPS_TAB_QUERIES = LAYOUT + 7
# on a depends_on cycle: the other members.
RELATIONSHIPS_TAB_ON_A_CYCLE_QUERIES = RELATIONSHIPS_TAB_QUERIES + 1
# /relationships: one keyset page of links joined to both ends (limit+1 rows) + the import
# numbers of discovered links.
RELATIONSHIPS_QUERIES = LAYOUT + 2
# a page without discovered links does not look up import numbers.
RELATIONSHIPS_MANUAL_QUERIES = RELATIONSHIPS_QUERIES - 1


@pytest.fixture
def count_statements(client, db):  # type: ignore[no-untyped-def]
    """GET a URL (after one warm-up request, unless `warm_up=False`) and return how many SQL
    statements it issued."""

    @contextmanager
    def listening() -> Iterator[list[str]]:
        seen: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            yield seen
        finally:
            event.remove(db.engine, "before_cursor_execute", record)

    def count(url: str, *, warm_up: bool = True) -> int:
        if warm_up:  # connections, caches and settings warmed up
            assert client.get(url).status_code == 200
        with listening() as seen:
            response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)[-1500:]
        return len(seen)

    return count


TAGS = ["pci", "gdpr", "batch", "team=payments", "tier1"]


def _assets(session, n: int, **overrides) -> list:  # type: ignore[no-untyped-def]
    return [
        make_asset(session, name=f"q-{i:03d}", tags=TAGS[: 1 + i % len(TAGS)], **overrides)
        for i in range(n)
    ]


@pytest.mark.parametrize("n", [5, 60])
def test_asset_list_query_count(session, login_as, count_statements, n):
    _assets(session, n, criticality="high")
    login_as("viewer")
    assert count_statements("/assets") == ASSET_LIST_QUERIES
    assert count_statements("/assets?q=q-0&tag=pci&sort=-criticality") == ASSET_LIST_QUERIES


def test_asset_list_query_count_on_a_later_page(session, login_as, client, count_statements):
    _assets(session, 60)
    login_as("viewer")
    nxt = parse(client.get("/assets").data).find("a", rel="next").get("href")
    assert nxt is not None
    assert count_statements(nxt) == ASSET_LIST_QUERIES


@pytest.mark.parametrize("n", [5, 60])
def test_trash_query_count(session, login_as, count_statements, n):
    for asset in _assets(session, n):
        asset_service.delete(session, ACTOR, asset.id)
    login_as("viewer")
    assert count_statements("/trash") == TRASH_QUERIES


@pytest.mark.parametrize("n", [2, 30])
def test_history_query_count(session, login_as, count_statements, n):
    asset = make_asset(session, name="busy", tags=["pci"])
    for i in range(n - 1):
        asset_service.update(session, ACTOR, asset.id, {"notes": f"change {i}", "port": 1000 + i},
                             expected_version=None)
    login_as("viewer")
    assert count_statements(f"/assets/{asset.id}/history") == HISTORY_QUERIES
    assert count_statements(f"/assets/{asset.id}") == DETAIL_QUERIES


@pytest.mark.parametrize("n", [3, 60])
def test_audit_query_count(session, login_as, count_statements, n):
    assets = _assets(session, n)
    asset_service.delete(session, ACTOR, assets[0].id)
    login_as("viewer")
    assert count_statements("/audit") == AUDIT_QUERIES
    assert count_statements("/audit?action=create&entity_type=asset") == AUDIT_QUERIES


@pytest.mark.parametrize("n", [3, 60])
def test_dashboard_query_count(session, login_as, count_statements, n):
    assets = _assets(session, n, environment="staging")
    asset_service.delete(session, ACTOR, assets[-1].id)
    login_as("viewer")
    assert count_statements("/") == DASHBOARD_QUERIES


def test_a_cached_dashboard_runs_fewer_statements_and_a_write_brings_them_back(session, login_as, count_statements):
    assets = _assets(session, 5, environment="staging")
    login_as("viewer")
    cached_counts.invalidate()  # as a commit that wrote assets, results and review items
    assert count_statements("/", warm_up=False) == DASHBOARD_COLD_QUERIES
    assert count_statements("/", warm_up=False) == DASHBOARD_QUERIES < DASHBOARD_COLD_QUERIES
    asset_service.update(session, ACTOR, assets[0].id, {"environment": "production"},
                         expected_version=assets[0].version)
    # the inventory's counts again; the results and the open review items did not change:
    # still cached
    assert count_statements("/", warm_up=False) > DASHBOARD_QUERIES
    assert count_statements("/", warm_up=False) == DASHBOARD_QUERIES


def _import_runs(session, n: int) -> list:  # type: ignore[no-untyped-def]
    runs = []
    for i in range(n):
        data = (f'[{{"name": "q-{i}", "engine": "mysql", "host": "q{i}.example.com", '
                f'"port": 3306}}, {{"name": "bad-{i}", "engine": "mysql", "port": 0}}]').encode()
        run = imports.create_run(session, ACTOR, data=data, filename=f"scan-{i}.json")
        runs.append(imports.execute(session, run.id) if i % 3 else run)  # some stay queued
    return runs


@pytest.mark.parametrize("n", [2, 40])
def test_imports_query_count(session, login_as, count_statements, n):
    runs = _import_runs(session, n)
    login_as("viewer")
    assert count_statements("/imports") == IMPORTS_QUERIES
    assert count_statements(f"/imports?before={runs[-1].number}") == IMPORTS_QUERIES
    assert count_statements(f"/imports/{runs[1].id}") == IMPORT_DETAIL_QUERIES
    assert count_statements(f"/imports/{runs[1].id}?outcome=failed") == IMPORT_DETAIL_WITHOUT_ASSETS_QUERIES


@pytest.mark.parametrize("n", [3, 60])
def test_conflicts_query_count(session, login_as, count_statements, n):
    run = make_run(session)
    candidates = _assets(session, 3)
    incoming = {"name": "q", "engine": "postgresql", "host": "new.example.com", "port": 5432,
                "owner": "x@example.com", "tags": ["scan"]}
    items = []
    for i in range(n):
        items.append(possible_duplicate(session, candidates[i % 3], incoming, run=run,
                                        record_key=f"csv:{i}", reasons=["a", "b", "c"]))
        if i % 5 == 0:
            items.append(duplicate_assets(session, candidates[i % 3], candidates[(i + 1) % 3]))
        if i % 7 == 0:
            items.append(field_conflict(session, candidates[i % 3], {"owner": ["a", "b"]}, run=run))
    login_as("reviewer")
    assert count_statements("/conflicts") == CONFLICTS_QUERIES
    assert count_statements("/conflicts?status=any&kind=possible_duplicate&min_confidence=50") \
        == CONFLICTS_FILTERED_QUERIES
    assert count_statements(f"/conflicts?import={run.number}") == CONFLICTS_BY_IMPORT_QUERIES
    assert count_statements(f"/conflicts/{items[0].id}") == CONFLICT_DETAIL_QUERIES
    assert count_statements(f"/conflicts/{items[1].id}") == CONFLICT_PAIR_QUERIES
    assert count_statements(f"/conflicts/{items[2].id}") == CONFLICT_DETAIL_QUERIES  # fields
    conflicts.resolve(session, Actor.system(), items[0].id, "dismiss")
    session.execute(update(Conflict).where(Conflict.id == items[0].id).values(
        resolved_by=login_as("viewer").id))
    session.commit()
    assert count_statements(f"/conflicts/{items[0].id}") == CONFLICT_RESOLVED_QUERIES


def _links(session, n: int, *, cycle: bool = False):  # type: ignore[no-untyped-def]
    """An asset with n links (either way, every third one discovered by an import), and 60 links
    in all so /relationships shows a full page."""
    hub = make_asset(session, name="hub", tags=["pci"])
    run = make_run(session)
    others = _assets(session, max(n, 12))
    for i in range(60):
        other = others[i % len(others)]
        kind = list(RelationshipKind)[i // len(others) % len(RelationshipKind)]
        ends = (hub.id, other.id) if i % 2 else (other.id, hub.id)
        if i >= n:  # the rest of the 60 between the others, not the hub
            ends = (other.id, others[(i + 1) % len(others)].id)
        rel = relationships.create(session, ACTOR, source_id=ends[0], target_id=ends[1], kind=kind)
        rel.import_run_id = run.id if i % 3 == 0 else None
    if cycle:  # others[0] depends on the hub already (i == 0)
        relationships.create(session, ACTOR, source_id=hub.id, target_id=others[0].id, kind="depends_on")
    session.commit()
    return hub


@pytest.mark.parametrize("n", [3, 40])
@pytest.mark.parametrize("cycle", [False, True])
def test_relationships_query_count(session, login_as, count_statements, n, cycle):
    hub = _links(session, n, cycle=cycle)
    login_as("viewer")
    tab = RELATIONSHIPS_TAB_ON_A_CYCLE_QUERIES if cycle else RELATIONSHIPS_TAB_QUERIES
    assert count_statements(f"/assets/{hub.id}/relationships") == tab
    assert count_statements("/relationships") == RELATIONSHIPS_QUERIES
    assert count_statements("/relationships?q=q-0&kind=depends_on") == RELATIONSHIPS_QUERIES
    assert count_statements("/relationships?origin=manual") == RELATIONSHIPS_MANUAL_QUERIES
    # an admin sees Remove buttons and the Add relationship form, but no extra queries
    login_as("admin")
    assert count_statements(f"/assets/{hub.id}/relationships") == tab
    assert count_statements("/relationships") == RELATIONSHIPS_QUERIES


def test_relationships_query_count_on_a_later_page(session, login_as, client, count_statements):
    _links(session, 40)
    login_as("viewer")
    nxt = parse(client.get("/relationships").data).find("a", rel="next").get("href")
    assert nxt is not None
    assert count_statements(nxt) == RELATIONSHIPS_QUERIES


def test_query_counts_do_not_depend_on_role(session, login_as, count_statements):
    asset_service.delete(session, ACTOR, _assets(session, 3)[0].id)
    login_as("admin")
    # an admin sees more buttons, but no extra queries (beside the dashboard's backup panel)
    baselines = {"/assets": ASSET_LIST_QUERIES, "/audit": AUDIT_QUERIES, "/": DASHBOARD_ADMIN_QUERIES,
                 "/trash": TRASH_QUERIES, "/imports": IMPORTS_QUERIES,
                 "/conflicts": CONFLICTS_EMPTY_QUERIES}
    for url, expected in baselines.items():
        assert count_statements(url) == expected, url


# /search (the header search's page): a page of matching assets (with their tags), the import
# runs and the review items that match; for an admin also the users. The count does not grow
# with the number of matches.
SEARCH_QUERIES = LAYOUT + 4
SEARCH_ADMIN_QUERIES = SEARCH_QUERIES + 1


@pytest.mark.parametrize("n", [2, 12])
@pytest.mark.parametrize(("role", "expected"), [("viewer", SEARCH_QUERIES),
                                                ("admin", SEARCH_ADMIN_QUERIES)])
def test_header_search_query_count(session, login_as, count_statements, n, role, expected):
    _assets(session, n)
    run = make_run(session)
    possible_duplicate(session, make_asset(session, name="q-dup"), {"name": "q-x"}, run=run,
                       record_key="q-key")
    login_as(role)
    assert count_statements("/search?q=q-") == expected


# /assets for an analyst: the bulk bar and a checkbox per row cost nothing more than a viewer's
# list ("all N matching this filter" reuses the page's count). The bulk form page reads nothing.
BULK_FORM_QUERIES = LAYOUT
# /change-sets/<id>: the change set alone (its counts, preview sample and the assets it left as
# they were are kept on its row); /change-sets: one page of change sets (limit+1 rows).
CHANGE_SET_QUERIES = LAYOUT + 1
CHANGE_SETS_QUERIES = LAYOUT + 1


@pytest.mark.parametrize("n", [5, 60])
def test_asset_list_with_selection_query_count(session, login_as, count_statements, n):
    assets = _assets(session, n)
    login_as("analyst")
    assert count_statements("/assets") == ASSET_LIST_QUERIES
    assert count_statements("/assets?q=q-0&environment=production") == ASSET_LIST_QUERIES
    ids = "&".join(f"ids={a.id}" for a in assets)
    assert count_statements(f"/change-sets/new?scope=ids&{ids}") == BULK_FORM_QUERIES


@pytest.mark.parametrize("n", [2, 40])
def test_change_set_pages_query_count(session, login_as, count_statements, n):
    from webapp.services import change_sets

    assets = _assets(session, n)
    selection = change_sets.Selection.of_ids([a.id for a in assets])
    preview = change_sets.create(session, ACTOR, selection, change_sets.BulkAction.parse(add_tags=["bulk"]))
    login_as("viewer")
    assert count_statements(f"/change-sets/{preview.id}") == CHANGE_SET_QUERIES
    asset_service.update(session, ACTOR, assets[0].id, {"notes": "meanwhile"}, expected_version=None)
    applied = change_sets.execute(session, change_sets.apply(session, ACTOR, preview.id).id)
    assert applied.refused == 1 and applied.reported
    assert count_statements(f"/change-sets/{applied.id}") == CHANGE_SET_QUERIES
    reverse = change_sets.execute(session, change_sets.undo(session, ACTOR, applied.id).id)
    assert count_statements(f"/change-sets/{reverse.id}") == CHANGE_SET_QUERIES
    assert count_statements("/change-sets") == CHANGE_SETS_QUERIES

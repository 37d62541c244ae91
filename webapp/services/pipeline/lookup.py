"""Looking up what a batch's records may be: the assets their keys name, identical records
seen before, the FQDN↔IP bridges, and the current state of the candidate assets. Also what
later batches of the run need to know (the bridges it learnt, and a dry run's overlay: the
assets it would have created or changed, which it never writes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

from webapp.discovery import normalise
from webapp.models import (
    AssetIdentifier,
    HostBridge,
    ImportRecord,
    ImportRun,
    RecordOutcome,
    Tag,
    asset_tags,
)
from webapp.services import assets, bulk, identifiers
from webapp.services.pipeline.items import (
    ASSETS,
    BLOCK_MAX,
    BRIDGES_PER_RECORD,
    COLUMN,
    IN_CHUNK,
    LIGHT_COLUMNS,
    NO_LOCKS,
    Item,
    Result,
    Work,
    is_strong,
)


class Lookup:
    """A run's lookups, batch by batch; keeps what later batches need to know."""

    def __init__(self, session: Session) -> None:
        self.session = session
        # FQDN<->IP pairs known to this run: learnt by it (both directions), and all pairs
        self.bridges: dict[str, set[str]] = {}
        self.pairs: set[tuple[str, str]] = set()
        # a dry run writes nothing, so the assets it would create or change live here, for
        # the whole run: kept compact (a run of 100,000 records keeps about as many), each
        # state as its values in the order of a shared tuple of its keys (`_state` gives the
        # dict back), each key's assets as the one asset id most keys name, else a set
        self.overlay_states: dict[uuid.UUID, tuple[tuple[str, ...], tuple[Any, ...]]] = {}
        self.overlay_keys: dict[str, uuid.UUID | set[uuid.UUID]] = {}
        self.overlay_fingerprints: dict[str, uuid.UUID] = {}
        self._layouts: dict[tuple[str, ...], tuple[str, ...]] = {}
        # read the assets a batch loads whole FOR UPDATE (PostgreSQL): held until it commits
        self.lock_rows = False

    def already_applied(
        self, items: list[Item], fp_hits: dict[str, tuple[uuid.UUID, int | None]]
    ) -> dict[int, Result]:
        """Records identical to one an earlier run applied to the asset's current version:
        reconciling them again cannot change anything, so they are `unchanged` without
        loading the asset (this is what makes re-importing a file cheap)."""
        candidates = {
            it.seq: fp_hits[it.fingerprint]
            for it in items
            if it.fingerprint in fp_hits and fp_hits[it.fingerprint][1] is not None
            and fp_hits[it.fingerprint][0] not in self.overlay_states
        }
        ids = sorted({asset_id for asset_id, _ in candidates.values()}, key=str)
        current: dict[uuid.UUID, int] = {}
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start : start + IN_CHUNK]
            current.update(self.session.execute(
                select(ASSETS.c.id, ASSETS.c.version).where(
                    bulk.among(self.session, ASSETS.c.id, chunk), ASSETS.c.deleted_at.is_(None)
                )
            ).tuples().all())
        done: dict[int, Result] = {}
        by_seq = {it.seq: it for it in items}
        for seq, (asset_id, version) in candidates.items():
            if current.get(asset_id) == version:
                it = by_seq[seq]
                done[seq] = Result(seq, it.record.row, it.record.key, RecordOutcome.unchanged,
                                   asset_id=asset_id, fingerprint=it.fingerprint, asset_version=version,
                                   warnings=list(it.record.warnings))
        return done

    def expand(self, items: list[Item]) -> set[tuple[str, str]]:
        """Add the bridged names to each record's endpoint keys; return the pairs this batch
        teaches that are not known yet."""
        wanted = {n for it in items for n in [*it.names, *it.ips]}
        known: dict[str, set[str]] = {n: set(self.bridges[n]) for n in wanted if n in self.bridges}
        pairs_known = self.pairs
        wanted_list = sorted(wanted)
        for start in range(0, len(wanted_list), IN_CHUNK):
            chunk = wanted_list[start : start + IN_CHUNK]
            rows = self.session.execute(
                select(HostBridge.address, HostBridge.hostname).where(
                    or_(bulk.among(self.session, HostBridge.address, chunk),
                        bulk.among(self.session, HostBridge.hostname, chunk))
                )
            )
            for address, hostname in rows:
                pairs_known.add((address, hostname))
                known.setdefault(address, set()).add(hostname)
                known.setdefault(hostname, set()).add(address)
        new_pairs: set[tuple[str, str]] = set()
        for it in items:
            dns = [n for n in it.names if not normalise.ip(n)]
            for address in it.ips:
                for hostname in dns[:BRIDGES_PER_RECORD]:
                    if (address, hostname) not in pairs_known:
                        new_pairs.add((address, hostname))
            expanded = list(dict.fromkeys([*it.names, *it.ips]))
            for name in list(expanded):
                expanded += [b for b in sorted(known.get(name, ())) if b not in expanded]
            port = it.fields.get("port")
            it.endpoint_keys = [identifiers.endpoint_key(n, port) for n in expanded]
            it.all_names = expanded
            it.block_keys = identifiers.blocking_keys(it.fields, expanded)
        return new_pairs

    def key_hits(self, items: list[Item]) -> dict[str, set[uuid.UUID]]:
        """The assets each key names: strong keys for every record; blocking keys for the
        records no strong key found (medium and weak evidence is what decides those); for a
        record found by a strong key, only its names (`name:`, a cloud id's instance name
        among them), so an asset named by the record's cloud identifier is asked about too."""
        hits = self._lookup(sorted({k for it in items for k in [it.cloud_key, *it.endpoint_keys] if k}))
        found = {it.seq for it in items if any(k in hits for k in [it.cloud_key, *it.endpoint_keys] if k)}
        hits.update(self._lookup(sorted({
            k for it in items for k in it.block_keys if it.seq not in found or k.startswith("name:")
        })))
        for key in [k for k, found in hits.items() if len(found) > BLOCK_MAX and not is_strong(k)]:
            del hits[key]  # too common to point at anyone (a name like "db", a host "localhost")
        return hits

    def _lookup(self, wanted: list[str]) -> dict[str, set[uuid.UUID]]:
        hits: dict[str, set[uuid.UUID]] = {}
        table = AssetIdentifier.__table__
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            strong = [k for k in chunk if is_strong(k)]
            blocking = [k for k in chunk if not is_strong(k)]
            rows = list(self.session.execute(
                select(table.c.key, table.c.asset_id).where(bulk.among(self.session, table.c.key, strong))
            )) if strong else []
            if blocking and bulk.is_postgresql(self.session):
                # a blocking key shared by more than BLOCK_MAX assets is dropped in the query:
                # at most BLOCK_MAX + 1 rows of it are looked at, and none is sent
                rows += self.session.execute(text(
                    "SELECT key, asset_id FROM (SELECT k.key, i.asset_id, count(*) OVER (PARTITION BY k.key) AS n "
                    "FROM unnest(CAST(:keys AS text[])) AS k(key) CROSS JOIN LATERAL (SELECT asset_id "
                    "FROM asset_identifiers a WHERE a.key = k.key LIMIT :cap) AS i) AS found WHERE n < :cap"
                ), {"keys": blocking, "cap": BLOCK_MAX + 1}).all()
            elif blocking:
                rows += self.session.execute(
                    select(table.c.key, table.c.asset_id).where(table.c.key.in_(blocking))).all()
            for key, asset_id in rows:
                hits.setdefault(key, set()).add(asset_id)
        for key in wanted:
            if key in self.overlay_keys:
                found = self.overlay_keys[key]
                if isinstance(found, set):
                    hits.setdefault(key, set()).update(found)
                else:
                    hits.setdefault(key, set()).add(found)
        return hits

    def fingerprint_hits(self, items: list[Item]) -> dict[str, tuple[uuid.UUID, int | None]]:
        """For each record's fingerprint: the asset the latest real run tied an identical
        record to, and that asset's version after it."""
        wanted = sorted({it.fingerprint for it in items if it.fingerprint})
        hits: dict[str, tuple[uuid.UUID, int | None]] = {}
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            rows = self.session.execute(
                select(ImportRecord.fingerprint, ImportRecord.asset_id, ImportRecord.asset_version)
                .join(ImportRun, ImportRun.id == ImportRecord.run_id)
                .where(
                    bulk.among(self.session, ImportRecord.fingerprint, chunk),
                    ImportRecord.asset_id.is_not(None),
                    ImportRun.dry_run.is_(False),
                )
                .order_by(ImportRecord.id)
            )
            for fp, asset_id, version in rows:
                hits[fp] = (asset_id, version)  # the latest sighting wins
        for fp in wanted:
            if fp in self.overlay_fingerprints:
                hits[fp] = (self.overlay_fingerprints[fp], None)
        return hits

    def load(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        """Current field values of these assets (as the service layer names fields)."""
        wanted = sorted(set(ids) - self.overlay_states.keys(), key=str)
        states: dict[uuid.UUID, dict[str, Any]] = {}
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            # the rows before their tags: an edit committed between the two reads then shows
            # as a moved version (the batch is redone), never as old tags under a new version
            stmt = select(ASSETS).where(bulk.among(self.session, ASSETS.c.id, chunk))
            if self.lock_rows and bulk.is_postgresql(self.session):
                stmt = stmt.with_for_update()
            rows = self.session.execute(stmt).mappings().all()
            tags: dict[uuid.UUID, list[str]] = {}
            for asset_id, name in self.session.execute(
                select(asset_tags.c.asset_id, Tag.name)
                .join(Tag, Tag.id == asset_tags.c.tag_id)
                .where(bulk.among(self.session, asset_tags.c.asset_id, chunk))
            ).all():
                tags.setdefault(asset_id, []).append(name)
            for row in rows:
                state = {f: row[COLUMN.get(f, f)] for f in assets.FIELDS if f != "tags"}
                state["tags"] = sorted(tags.get(row["id"], []))
                state["aliases"] = list(state["aliases"] or [])
                state["metadata"] = dict(state["metadata"] or {})
                state.update(
                    _id=row["id"], _version=row["version"], _deleted_at=row["deleted_at"],
                    _locked=frozenset(row["locked_fields"]) if row["locked_fields"] else NO_LOCKS,
                    _last_seen_at=row["last_seen_at"], _first_seen_at=row["first_seen_at"],
                    _sources=dict(row["field_sources"] or {}),
                )
                # what the identifier keys were made of, to rewrite only the ones that change
                state["_key_values"] = {f: state[f] for f in identifiers.KEY_FIELDS}
                states[row["id"]] = state
        for asset_id in set(ids) & self.overlay_states.keys():
            states[asset_id] = self._state(asset_id)
        return states

    def load_light(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        """What `matching.score` reads of these assets, and their names for messages."""
        states = {a: self._state(a) for a in ids if a in self.overlay_states}
        wanted = sorted(ids - states.keys(), key=str)
        columns = [ASSETS.c[c] for c in LIGHT_COLUMNS]
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            for row in self.session.execute(
                select(*columns).where(bulk.among(self.session, ASSETS.c.id, chunk))
            ).all():
                state = dict(zip(LIGHT_COLUMNS, row, strict=True))
                state.update(_id=state.pop("id"), _deleted_at=state.pop("deleted_at"), _light=True)
                state["aliases"] = list(state["aliases"] or [])
                states[state["_id"]] = state
        return states

    def remember(
        self, work: dict[uuid.UUID, Work], new_bridges: set[tuple[str, str]], results: list[Result],
        dry: bool,
    ) -> None:
        """After a batch commits: the bridges it learnt and, for a dry run, what it would have
        written (later batches look it up as if it were in the tables)."""
        self.pairs |= new_bridges
        for address, hostname in new_bridges:
            self.bridges.setdefault(address, set()).add(hostname)
            self.bridges.setdefault(hostname, set()).add(address)
        if not dry:
            return
        for asset_id, w in work.items():
            if w.is_new or w.events:
                layout = tuple(w.state)
                self.overlay_states[asset_id] = (self._layouts.setdefault(layout, layout),
                                                 tuple(w.state.values()))
                if w.is_new and not w.changed:
                    keys = w.state["_new_keys"]
                elif w.is_new or identifiers.KEY_FIELDS & w.changed:
                    keys = identifiers.keys_for(w.state)
                else:
                    continue  # its keys did not change: the table has them
                for key in keys:
                    found = self.overlay_keys.get(key)
                    if found is None:
                        self.overlay_keys[key] = asset_id
                    elif not isinstance(found, set):
                        if found != asset_id:
                            self.overlay_keys[key] = {found, asset_id}
                    elif len(found) <= BLOCK_MAX or is_strong(key):  # more only says "too common"
                        found.add(asset_id)
        for r in results:
            if r.asset_id is not None and r.fingerprint:
                self.overlay_fingerprints[r.fingerprint] = r.asset_id

    def _state(self, asset_id: uuid.UUID) -> dict[str, Any]:
        """A dry run's asset as the run left it: a new dict (its values shared, as a copy of
        the batch's state would share them)."""
        keys, values = self.overlay_states[asset_id]
        return dict(zip(keys, values, strict=True))

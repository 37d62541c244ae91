"""One import batch: identify each discovered record, reconcile it, write, audit (SPEC §6).

Identification uses strong identifiers only (the weak-evidence scoring comes with the review
queue):

1. the same `cloud_resource_id`;
2. the same endpoint: a host name or address of the record (host, aliases, IP addresses, and
   the names they are bridged to by FQDN↔IP pairs learnt from nmap and cloud IP lists) with the
   same port, and a compatible engine. Never the host alone: a record without a port only
   matches an asset without a port and with the same database name;
3. the same record seen before: an identical record (same fingerprint) that an earlier real run
   tied to an asset.

A match updates the asset, except that an absent value never overwrites one, a field in
`locked_fields` is left alone, a derived name (`host:port`) never renames an asset, and tags,
aliases and metadata only grow. Anything unmatched is created. The whole batch (assets, tags,
identifiers, bridges, audit events with actor `import #N`, record outcomes and the run's
progress) commits in one transaction, so a killed worker never leaves half a batch.

Assets are read and written with Core statements in bulk, not one ORM object per record: an
import of 100,000 records must finish in seconds (SPEC §11). Validation is the service layer's
(`assets.validate`), so an import accepts exactly what the UI and API accept.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, MetaData, Table, bindparam, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.discovery import DiscoveredRecord, normalise
from webapp.discovery.base import RecordError
from webapp.discovery.fields import derived_name
from webapp.models import (
    Asset,
    AssetIdentifier,
    AuditAction,
    Conflict,
    ConflictKind,
    ConflictStatus,
    HostBridge,
    ImportRecord,
    ImportRun,
    RecordOutcome,
    Tag,
    asset_tags,
)
from webapp.models.base import utcnow
from webapp.services import assets, audit, bulk, crypto, identifiers, matching
from webapp.services import settings as settings_service
from webapp.services.actor import Actor
from webapp.services.errors import ValidationFailed

IMPORT_LOCK = 0x494D5054  # arbitrary constant naming the import batches' advisory lock
IN_CHUNK = 5000  # values per IN (...) list
ROW_ERRORS_MAX = 1000  # kept on the run; every failed record is also in its records
SEEN_REFRESH = timedelta(hours=1)  # last_seen_at is refreshed at most this often
BRIDGES_PER_RECORD = 20
BLOCK_MAX = 10  # a blocking key shared by more assets than this tells nothing: it is ignored
ALIASES_MAX = 50
ASSETS = Asset.__table__
# fields the import never takes from a record onto an existing asset
NOT_RECONCILED = frozenset({"source", "confidence"})
# fields an import only adds to (tags, aliases, metadata keys): nothing to hold back
ADDITIVE = frozenset({"tags", "aliases", "metadata"})
# what scoring a candidate reads (`_load_light`)
LIGHT_COLUMNS = ("id", "deleted_at", "name", "engine", "host", "port", "aliases", "database_name",
                 "cloud_resource_id", "environment")
# field name -> column name, where they differ (tags live in their own table)
COLUMN = {"metadata": "metadata", "connection_string": "connection_string_encrypted"}


class _Retry(Exception):
    """The batch met a concurrent change (an edited asset, a clashing insert): redo it."""


def fingerprint(value: Any) -> str:
    """SHA-256 of a value's canonical JSON (a record's fields, or what a review item asks)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class _Item:
    seq: int
    record: DiscoveredRecord
    fields: dict[str, Any] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    cloud_key: str | None = None
    endpoint_keys: list[str] = field(default_factory=list)
    all_names: list[str] = field(default_factory=list)  # host names and addresses, bridged ones too
    block_keys: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    name_derived: bool = False


@dataclass
class _Result:
    seq: int
    row: int | None
    key: str
    outcome: RecordOutcome
    asset_id: uuid.UUID | None = None
    message: str | None = None
    changes: dict[str, Any] | None = None
    fingerprint: str | None = None
    asset_version: int | None = None
    conflict: dict[str, Any] | None = None  # the review item this record asks for
    conflict_id: uuid.UUID | None = None
    # existing assets this record shows to be one database (possible duplicates of each other)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    # what the parser left out of the record ("criticality 'bogus' not recognised; left out")
    warnings: list[str] = field(default_factory=list)

    @property
    def full_message(self) -> str | None:
        """The outcome's message with the record's warnings after it."""
        parts = [self.message] if self.message else []
        if self.warnings:
            parts.append("Warnings: " + "; ".join(self.warnings) + ".")
        return " ".join(parts) or None


@dataclass
class _Decision:
    """What identification concluded for one record."""

    asset_id: uuid.UUID | None = None
    how: str | None = None  # cloud, endpoint or fingerprint
    skip: str | None = None  # why the record is left alone
    flag: tuple[uuid.UUID, matching.Score] | None = None  # a possible duplicate of this asset
    # other existing assets the record's evidence ties to the matched one
    duplicates: list[tuple[uuid.UUID, matching.Score]] = field(default_factory=list)


@dataclass
class _Work:
    """An asset touched by this batch: its state as the batch leaves it."""

    state: dict[str, Any]
    is_new: bool
    read_version: int
    events: list[audit.Entry] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)


class Pipeline:
    """Processes a run's records batch by batch; keeps what later batches need to know."""

    def __init__(self, session: Session, run: ImportRun, links: Iterable[tuple[str, str]] = ()) -> None:
        self.session = session
        self.run = run
        values = settings_service.all_settings(session)
        self.auto_merge = float(values["auto_merge_threshold"])
        self.review = float(values["review_threshold"])
        self.precedence = matching.Precedence(
            list(values["source_precedence"]), list(values["business_source_precedence"])
        )
        # what precedence knows this run's source by (`nmap`, `csv`, a listed label, ...)
        self.kind = matching.source_kind(run.source, run.format, self.precedence.known)
        # replication links stated anywhere in the file: a replica never merges with its primary
        self.links = set(links)
        self.run_id = run.id
        self.dry = run.dry_run
        self.actor = Actor(user_id=run.uploaded_by, label=run.label, is_manual=False)
        self.position = run.processed
        # FQDN<->IP pairs known to this run: learnt by it (both directions), and all pairs
        self.bridges: dict[str, set[str]] = {}
        self.pairs: set[tuple[str, str]] = set()
        # a dry run writes nothing, so the assets it would create or change live here
        self.overlay_states: dict[uuid.UUID, dict[str, Any]] = {}
        self.overlay_keys: dict[str, set[uuid.UUID]] = {}
        self.overlay_fingerprints: dict[str, uuid.UUID] = {}
        self.imagined: set[uuid.UUID] = set()  # the assets a dry run would have created

    # --- driver ---------------------------------------------------------------------------

    def process(self, batch: Sequence[DiscoveredRecord]) -> None:
        for _attempt in range(5):
            try:
                self._process(batch)
                return
            except _Retry:
                self.session.rollback()
        raise RuntimeError("assets kept changing under the import; five attempts failed")

    def _process(self, batch: Sequence[DiscoveredRecord]) -> None:
        # Batches of concurrent imports take turns, so each sees what the others committed:
        # two runs of one file at once must not both create the same database.
        bulk.advisory_lock(self.session, IMPORT_LOCK)
        now = utcnow()
        items = [self._prepare(self.position + i + 1, record) for i, record in enumerate(batch)]
        valid = [it for it in items if it.record.error is None]
        fp_hits = self._fingerprint_hits(valid)
        done = self._already_applied(valid, fp_hits)
        rest = [it for it in valid if it.seq not in done]
        new_bridges = self._expand(rest)
        key_hits = self._key_hits(rest)
        # assets a record may merge into are loaded whole; those only blocking keys brought
        # (weak evidence never merges) only as far as scoring needs
        ids = {a for key, hit in key_hits.items() if _is_strong(key) for a in hit}
        ids |= {fp_hits[it.fingerprint][0] for it in rest if it.fingerprint in fp_hits}
        states = self._load(ids)
        states.update(self._load_light({a for hit in key_hits.values() for a in hit} - states.keys()))
        work: dict[uuid.UUID, _Work] = {}
        results: list[_Result] = []
        for it in items:
            if it.seq in done:
                results.append(done[it.seq])
                continue
            result = self._one(it, key_hits, fp_hits, states, work, now)
            if result.asset_id in states and result.outcome != RecordOutcome.flagged:
                result.asset_version = states[result.asset_id]["_version"]
            results.append(result)
        conflicts = self._conflicts(results, now)
        if not self.dry:
            bulk.insert_rows(self.session, Conflict.__table__, conflicts)
            self._write(work, results, new_bridges, now)
        if self.dry:
            self.imagined |= {asset_id for asset_id, w in work.items() if w.is_new}
        self._record(results, now)
        try:
            self.session.commit()
        except IntegrityError:
            raise _Retry from None
        self.position += len(batch)
        self._remember(work, new_bridges, results)

    def _already_applied(
        self, items: list[_Item], fp_hits: dict[str, tuple[uuid.UUID, int | None]]
    ) -> dict[int, _Result]:
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
        done: dict[int, _Result] = {}
        by_seq = {it.seq: it for it in items}
        for seq, (asset_id, version) in candidates.items():
            if current.get(asset_id) == version:
                it = by_seq[seq]
                done[seq] = _Result(seq, it.record.row, it.record.key, RecordOutcome.unchanged,
                                    asset_id=asset_id, fingerprint=it.fingerprint, asset_version=version,
                                    warnings=list(it.record.warnings))
        return done

    # --- preparing and looking up ---------------------------------------------------------

    def _prepare(self, seq: int, record: DiscoveredRecord) -> _Item:
        it = _Item(seq=seq, record=record)
        if record.error is not None:
            return it
        fields = dict(record.fields)
        it.fields = fields
        it.names = identifiers.names(fields)
        it.ips = [a for a in dict.fromkeys([*record.ip_addresses, *it.names]) if normalise.ip(a)]
        cloud = fields.get("cloud_resource_id")
        if isinstance(cloud, str) and cloud.strip():
            it.cloud_key = identifiers.cloud_key(cloud)
        it.name_derived = _is_derived_name(fields, it.names)
        it.fingerprint = fingerprint(fields)
        return it

    def _expand(self, items: list[_Item]) -> set[tuple[str, str]]:
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

    def _key_hits(self, items: list[_Item]) -> dict[str, set[uuid.UUID]]:
        """The assets each key names: strong keys for every record; blocking keys only for the
        records no strong key found (weak evidence is what decides those; a record found by a
        strong key is compared with the other assets on its endpoint instead)."""
        hits = self._lookup(sorted({k for it in items for k in [it.cloud_key, *it.endpoint_keys] if k}))
        unfound = [it for it in items if not any(k in hits for k in [it.cloud_key, *it.endpoint_keys] if k)]
        hits.update(self._lookup(sorted({k for it in unfound for k in it.block_keys})))
        for key in [k for k, found in hits.items() if len(found) > BLOCK_MAX and not _is_strong(k)]:
            del hits[key]  # too common to point at anyone (a name like "db", a host "localhost")
        return hits

    def _lookup(self, wanted: list[str]) -> dict[str, set[uuid.UUID]]:
        hits: dict[str, set[uuid.UUID]] = {}
        table = AssetIdentifier.__table__
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            strong = [k for k in chunk if _is_strong(k)]
            blocking = [k for k in chunk if not _is_strong(k)]
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
                hits.setdefault(key, set()).update(self.overlay_keys[key])
        return hits

    def _fingerprint_hits(self, items: list[_Item]) -> dict[str, tuple[uuid.UUID, int | None]]:
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

    def _load(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        """Current field values of these assets (as the service layer names fields)."""
        wanted = sorted(set(ids) - set(self.overlay_states), key=str)
        states: dict[uuid.UUID, dict[str, Any]] = {}
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            tags: dict[uuid.UUID, list[str]] = {}
            for asset_id, name in self.session.execute(
                select(asset_tags.c.asset_id, Tag.name)
                .join(Tag, Tag.id == asset_tags.c.tag_id)
                .where(bulk.among(self.session, asset_tags.c.asset_id, chunk))
            ).all():
                tags.setdefault(asset_id, []).append(name)
            rows = self.session.execute(select(ASSETS).where(bulk.among(self.session, ASSETS.c.id, chunk)))
            for row in rows.mappings().all():
                state = {f: row[COLUMN.get(f, f)] for f in assets.FIELDS if f != "tags"}
                state["tags"] = sorted(tags.get(row["id"], []))
                state["aliases"] = list(state["aliases"] or [])
                state["metadata"] = dict(state["metadata"] or {})
                state.update(
                    _id=row["id"], _version=row["version"], _deleted_at=row["deleted_at"],
                    _locked=set(row["locked_fields"] or []), _last_seen_at=row["last_seen_at"],
                    _first_seen_at=row["first_seen_at"],
                    _sources=dict(row["field_sources"] or {}),
                )
                # what the identifier keys were made of, to rewrite only the ones that change
                state["_key_values"] = {f: state[f] for f in identifiers.KEY_FIELDS}
                states[row["id"]] = state
        for asset_id in set(ids) & set(self.overlay_states):
            states[asset_id] = dict(self.overlay_states[asset_id])
        return states

    def _load_light(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        """What `matching.score` reads of these assets, and their names for messages."""
        states = {a: dict(self.overlay_states[a]) for a in ids if a in self.overlay_states}
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

    # --- deciding -------------------------------------------------------------------------

    def _one(
        self,
        it: _Item,
        key_hits: dict[str, set[uuid.UUID]],
        fp_hits: dict[str, tuple[uuid.UUID, int | None]],
        states: dict[uuid.UUID, dict[str, Any]],
        work: dict[uuid.UUID, _Work],
        now: datetime,
    ) -> _Result:
        record = it.record
        if record.error is not None:
            return _Result(it.seq, record.row, record.key, RecordOutcome.failed, message=record.error,
                           warnings=list(record.warnings))
        result = _Result(it.seq, record.row, record.key, RecordOutcome.unchanged, fingerprint=it.fingerprint,
                         warnings=list(record.warnings))
        decision = self._identify(it, key_hits, fp_hits, states)
        if decision.skip is not None:
            result.outcome, result.message = RecordOutcome.skipped, decision.skip
            return result
        if decision.flag is not None:
            return self._flag_duplicate(it, states[decision.flag[0]], decision.flag[1], result)
        if decision.asset_id is None:
            return self._create(it, key_hits, states, work, result, now)
        asset_id = decision.asset_id
        state = states[asset_id]
        result.asset_id = asset_id
        for other, score in decision.duplicates:
            result.pairs.append(self._pair(it, state, states[other], score))
        if state["_deleted_at"] is not None:
            result.outcome = RecordOutcome.skipped
            result.message = (
                f"Matches “{state['name']}”, which is in the trash; restore it to let imports "
                "update it."
            )
            return result
        raw, held = self._reconcile(state, it, decision.how)
        if held:
            self._flag_fields(it, state, held, result)
        if not raw:
            work.setdefault(asset_id, _Work(state, False, state["_version"]))
            return result
        try:
            cleaned = assets.validate(raw, partial=True)
        except ValidationFailed as exc:
            result.outcome = RecordOutcome.failed
            result.message = _messages(exc)
            result.conflict = None
            return result
        entry = work.setdefault(asset_id, _Work(state, False, state["_version"]))
        diff = self._apply(state, cleaned)
        if not diff:
            return result
        entry.changed.update(diff)
        state["_sources"] = {**state["_sources"], **dict.fromkeys(sorted(diff), self.kind)}
        old_version = state["_version"]
        state["_version"] = old_version + 1
        diff["version"] = [old_version, state["_version"]]
        if result.outcome != RecordOutcome.flagged:
            result.outcome = RecordOutcome.updated
        result.changes = audit.mask_secrets(diff)
        entry.events.append(audit.Entry(AuditAction.update, assets.ENTITY, asset_id, result.changes, masked=True))
        if identifiers.KEY_FIELDS & diff.keys():
            for key in identifiers.keys_for(state):
                key_hits.setdefault(key, set()).add(asset_id)
        return result

    def _identify(
        self,
        it: _Item,
        key_hits: dict[str, set[uuid.UUID]],
        fp_hits: dict[str, tuple[uuid.UUID, int | None]],
        states: dict[uuid.UUID, dict[str, Any]],
    ) -> _Decision:
        """Strong identifiers first (SPEC §6), then an identical record seen before, then
        the weak evidence of the candidates the blocking keys brought. A record matched on a
        strong identifier also brings up the other existing assets its evidence ties to the
        match (possible duplicates of each other, for a reviewer)."""
        near = set().union(*(key_hits.get(k, set()) for k in it.endpoint_keys))
        decision = self._decide(it, near, key_hits, fp_hits, states)
        if decision.asset_id is not None and decision.how in ("cloud", "endpoint"):
            decision.duplicates = self._connected(it, decision.asset_id, near, states)
        return decision

    def _decide(
        self,
        it: _Item,
        near: set[uuid.UUID],
        key_hits: dict[str, set[uuid.UUID]],
        fp_hits: dict[str, tuple[uuid.UUID, int | None]],
        states: dict[uuid.UUID, dict[str, Any]],
    ) -> _Decision:
        if it.cloud_key and key_hits.get(it.cloud_key):
            return _Decision(min(key_hits[it.cloud_key], key=str), "cloud")
        strong = [(a, s) for a, s in self._scores(it, near, states) if s.strong]
        if len(strong) > 1:  # two databases on one endpoint: the database name tells them apart
            database = it.fields.get("database_name")
            strong = [(a, s) for a, s in strong if states[a]["database_name"] == database] or strong
        if len(strong) == 1:
            asset_id, score = strong[0]
            if score.confidence >= self.auto_merge:
                return _Decision(asset_id, "endpoint")
            return _Decision(flag=strong[0])
        if len(strong) > 1:
            # the record names its own host first: the asset known by it is the match
            own = it.names[0] if it.names else None
            strong.sort(key=lambda p: (identifiers.host_form(states[p[0]]["host"] or "") != own, str(p[0])))
            (asset_id, score), others = strong[0], strong[1:]
            pairs = [(o, matching.score(states[asset_id], it.all_names, states[o], linked=self.links))
                     for o, _ in others]
            if score.confidence >= self.auto_merge and all(p.veto is None for _, p in pairs):
                # the record's evidence (a bridge, an alias) shows them to be one database:
                # it updates the first, and a reviewer decides about the others
                return _Decision(asset_id, "endpoint")
            names = ", ".join(f"“{states[a]['name']}”" for a, _ in strong[:5])
            score.reasons.append(f"ambiguous: the endpoint matches {len(strong)} assets ({names})")
            return _Decision(flag=(asset_id, score))
        found = fp_hits.get(it.fingerprint or "")
        if found is not None and found[0] in states:
            return _Decision(found[0], "fingerprint")
        weak = set().union(*(key_hits.get(k, set()) for k in it.block_keys)) - near
        live = [(a, s) for a, s in self._scores(it, weak | near, states)
                if states[a]["_deleted_at"] is None and s.veto is None]
        if live:
            asset_id, score = max(live, key=lambda pair: (pair[1].confidence, str(pair[0])))
            if score.confidence >= self.review:
                return _Decision(flag=(asset_id, score))
        return _Decision()

    def _connected(
        self, it: _Item, asset_id: uuid.UUID, candidates: set[uuid.UUID], states: dict[uuid.UUID, dict[str, Any]]
    ) -> list[tuple[uuid.UUID, matching.Score]]:
        """Other live assets this record also describes well enough to ask about, with the
        record's evidence for each; never one that could not be the matched asset's database."""
        found = []
        chosen = states[asset_id]
        for other, score in self._scores(it, candidates - {asset_id}, states):
            if states[other]["_deleted_at"] is not None or score.veto or score.confidence < self.review:
                continue
            if matching.score(chosen, identifiers.names(chosen), states[other], linked=self.links).veto:
                continue  # e.g. another database on the same server
            found.append((other, score))
        return found

    def _scores(
        self, it: _Item, ids: Iterable[uuid.UUID], states: dict[uuid.UUID, dict[str, Any]]
    ) -> list[tuple[uuid.UUID, matching.Score]]:
        scored = []
        for asset_id in sorted(ids, key=str):
            state = states.get(asset_id)
            if state is None:
                continue
            if "_names" not in state:  # kept until host or aliases change (`_apply`)
                state["_names"] = identifiers.names(state)
            scored.append((asset_id, matching.score(it.fields, it.all_names, state, linked=self.links)))
        return scored

    def _reconcile(
        self, state: dict[str, Any], it: _Item, how: str | None
    ) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """What the record would change on the asset (raw values, before validation), and
        what it may not change: differing values of fields that are locked or were last set
        by a higher-precedence source (`{field: [current, incoming]}`, for a field conflict)."""
        locked = state["_locked"]
        raw: dict[str, Any] = {}
        held: dict[str, list[Any]] = {}
        extra_names: list[str] = []
        for name, new in it.fields.items():
            if name in NOT_RECONCILED or new is None:
                continue
            current = state.get(name)
            if name == "name" and it.name_derived:
                continue
            if name in ADDITIVE or name == "connection_string":
                if name in locked:
                    continue
            elif name == "engine_version" and matching.is_version_range(new):
                if current is None and name not in locked:
                    raw[name] = new  # better than nothing; an exact version replaces it later
                continue
            elif (current is not None and not _same(new, current)
                  and (name != "host" or how == "cloud") and self._outranked(state, name)):
                # (a different host found by endpoint is another name of it: an alias, below)
                if name != "host" or identifiers.host_form(current) != identifiers.host_form(new):
                    held[name] = [audit.jsonable(current), audit.jsonable(new)]
                continue
            if name == "host":
                if current and identifiers.host_form(current) == identifiers.host_form(new):
                    continue
                if current and how != "cloud":
                    extra_names.append(new)  # another name of the same server
                    continue
                raw["host"] = new
            elif name == "aliases":
                extra_names += new
            elif name == "tags":
                merged = sorted(set(current) | {t.lower() for t in new})
                if merged != current:
                    raw["tags"] = merged
            elif name == "metadata":
                merged = {**current, **new}
                if not _same(merged, current):
                    raw["metadata"] = merged
            elif name == "connection_string":
                if (crypto.decrypt(self.session, current) if current else None) != new:
                    raw["connection_string"] = new
            elif not _same(new, current):
                if name in locked:
                    held[name] = [audit.jsonable(current), audit.jsonable(new)]
                else:
                    raw[name] = new
        if extra_names and "aliases" not in locked:
            host = identifiers.host_form(raw.get("host") or state["host"] or "")
            have = {identifiers.host_form(a) for a in state["aliases"]} | {host}
            added: list[str] = []
            for alias in extra_names:
                form = identifiers.host_form(alias)
                if form not in have:
                    have.add(form)
                    added.append(alias)
            room = max(0, ALIASES_MAX - len(state["aliases"]))
            if added[:room]:
                raw["aliases"] = [*state["aliases"], *added[:room]]
        return raw, held

    def _flag_duplicate(
        self, it: _Item, state: dict[str, Any], score: matching.Score, result: _Result
    ) -> _Result:
        """Not sure enough to merge, too sure to create: ask a reviewer (nothing is written to
        the inventory for this record until then)."""
        result.outcome = RecordOutcome.flagged
        result.message = (
            f"Possibly the same database as “{state['name']}” (confidence "
            f"{score.confidence:.0%}); waiting in the review queue."
        )
        result.conflict = {
            "kind": ConflictKind.possible_duplicate, "candidate_id": state["_id"],
            "incoming": _incoming(it.fields), "confidence": round(score.confidence, 4),
            "reasons": score.reasons, "fields": {},
            "fingerprint": _digest("possible_duplicate", state["_id"], it.fingerprint),
        }
        return result

    def _pair(
        self, it: _Item, state: dict[str, Any], other: dict[str, Any], score: matching.Score
    ) -> dict[str, Any]:
        """A question about two existing assets one record shows to be the same database."""
        first, second = sorted((state["_id"], other["_id"]), key=str)
        return {
            "kind": ConflictKind.possible_duplicate, "candidate_id": first, "duplicate_id": second,
            "incoming": {}, "confidence": round(score.confidence, 4),
            "reasons": [f"record {it.record.key} of {self.run.label} names both “{state['name']}” "
                        f"and “{other['name']}”", *score.reasons],
            "fields": {}, "fingerprint": _digest("duplicate", str(first), str(second)),
        }

    def _flag_fields(
        self, it: _Item, state: dict[str, Any], held: dict[str, list[Any]], result: _Result
    ) -> None:
        """The record matched, but may not overwrite these fields: ask a reviewer."""
        reasons = []
        for name in held:
            if name in state["_locked"]:
                reasons.append(f"{name} is locked: a person set it")
            else:
                current = state["_sources"].get(name) or state["source"]
                reasons.append(f"{name} was set by {current}, which outranks {self.kind}")
        result.outcome = RecordOutcome.flagged
        result.message = (
            "Differs from values this import may not overwrite (" + ", ".join(held)
            + "); waiting in the review queue."
        )
        result.conflict = {
            "kind": ConflictKind.field_conflict, "candidate_id": state["_id"],
            "incoming": _incoming(it.fields), "confidence": 1.0, "reasons": reasons,
            "fields": held,
            "fingerprint": _digest("field_conflict", state["_id"], {f: v[1] for f, v in held.items()}),
        }

    def _conflicts(self, results: list[_Result], now: datetime) -> list[dict[str, Any]]:
        """Review items for the flagged records, as rows to insert. The same question asked
        again (same candidate, same incoming values) finds the item already asked: an open one
        is reused; one a reviewer answered is not asked again."""
        pending = [r for r in results if r.conflict is not None or r.pairs]
        if not pending:
            return []
        asked_all = [q for r in pending for q in [r.conflict, *r.pairs] if q is not None]
        fingerprints = sorted({q["fingerprint"] for q in asked_all})
        known: dict[tuple[Any, str], tuple[uuid.UUID, ConflictStatus]] = {}
        table = Conflict.__table__
        for start in range(0, len(fingerprints), IN_CHUNK):
            rows = self.session.execute(
                select(table.c.candidate_id, table.c.fingerprint, table.c.id, table.c.status)
                .where(bulk.among(self.session, table.c.fingerprint, fingerprints[start : start + IN_CHUNK]))
                .order_by(table.c.created_at)
            )
            for candidate_id, fp, conflict_id, status in rows:
                known[(candidate_id, fp)] = (conflict_id, ConflictStatus(status))
        new: list[dict[str, Any]] = []

        def ask(asked: dict[str, Any], r: _Result) -> tuple[uuid.UUID, ConflictStatus]:
            key = (asked["candidate_id"], asked["fingerprint"])
            found = known.get(key)
            if found is None:
                found = known[key] = (uuid.uuid4(), ConflictStatus.open)
                new.append({
                    "duplicate_id": None, **asked, "id": found[0], "import_run_id": self.run_id,
                    "record_key": r.key[:600], "status": ConflictStatus.open, "resolution": None,
                    "result_asset_id": None, "resolved_by": None, "resolved_at": None,
                    "created_at": now,
                })
            return found

        for r in pending:
            for pair in r.pairs:
                conflict_id, status = ask(pair, r)
                if status == ConflictStatus.open and r.conflict is None:
                    r.conflict_id = conflict_id  # the record shows where its question went
            asked = r.conflict
            if asked is None:
                continue
            conflict_id, status = ask(asked, r)
            if status == ConflictStatus.open:
                r.conflict_id = conflict_id
                continue
            r.conflict = None  # answered before: not asked again
            if asked["kind"] == ConflictKind.possible_duplicate:
                r.outcome = RecordOutcome.skipped
                r.message = ("A reviewer already decided about this record (it possibly "
                             "duplicates another asset); it is left out.")
            else:
                r.outcome = RecordOutcome.updated if r.changes else RecordOutcome.unchanged
                r.message = "A reviewer already kept the current values of: " + ", ".join(asked["fields"])
        return new

    def _outranked(self, state: dict[str, Any], name: str) -> bool:
        """Whether the field's current value was set by a source this run may not overrule:
        a person (locked fields), or a source of higher precedence for this field."""
        if name in state["_locked"]:
            return True
        current = state["_sources"].get(name) or matching.source_kind(
            state["source"], None, self.precedence.known
        )
        return self.precedence.outranks(name, current, self.kind)

    def _apply(self, state: dict[str, Any], cleaned: dict[str, Any]) -> dict[str, list[Any]]:
        diff: dict[str, list[Any]] = {}
        for name, new in cleaned.items():
            if name == "connection_string":
                current = state[name]
                plain = crypto.decrypt(self.session, current) if current else None
                if plain != new:
                    state[name] = crypto.encrypt(self.session, new) if new else None
                    diff[name] = [plain, new]
                continue
            if not _same(state.get(name), new):
                diff[name] = [state.get(name), new]
                state[name] = new
                if name in ("host", "aliases"):
                    state.pop("_names", None)
        return diff

    def _create(
        self,
        it: _Item,
        key_hits: dict[str, set[uuid.UUID]],
        states: dict[uuid.UUID, dict[str, Any]],
        work: dict[uuid.UUID, _Work],
        result: _Result,
        now: datetime,
    ) -> _Result:
        data = {k: v for k, v in it.fields.items() if k != "source"}
        try:
            cleaned = assets.validate(data, partial=False)
        except ValidationFailed as exc:
            result.outcome = RecordOutcome.failed
            result.message = _messages(exc)
            return result
        asset_id = uuid.uuid4()
        state: dict[str, Any] = {f: assets.EMPTY.get(f) for f in assets.FIELDS}
        state["aliases"], state["tags"], state["metadata"] = [], [], {}
        state.update(cleaned)
        for name, default in assets.NOT_NULL_DEFAULTS.items():
            if state.get(name) is None:
                state[name] = default
        state["source"] = self.run.source
        state["_sources"] = {f: self.kind for f in cleaned if f not in ADDITIVE and cleaned[f] is not None}
        if state.get("connection_string"):
            state["connection_string"] = crypto.encrypt(self.session, state["connection_string"])
        state.update(_id=asset_id, _version=1, _deleted_at=None, _locked=set(),
                     _last_seen_at=now, _first_seen_at=now)
        states[asset_id] = state
        events = []
        if not self.dry:  # (a dry run records no event, and a created record lists no changes)
            snapshot = {f: audit.jsonable(state[f]) for f in assets.FIELDS}
            diff: dict[str, list[Any]] = {f: [None, v] for f, v in snapshot.items() if v not in (None, [], {})}
            diff["version"] = [None, 1]
            if diff.get("connection_string"):
                diff["connection_string"] = [None, audit.MASK]
            events.append(audit.Entry(AuditAction.create, assets.ENTITY, asset_id, diff, masked=True))
        work[asset_id] = _Work(state, True, 1, events)
        state["_new_keys"] = identifiers.keys_for(state)
        for key in state["_new_keys"]:
            key_hits.setdefault(key, set()).add(asset_id)
        result.outcome = RecordOutcome.created
        result.asset_id = asset_id
        return result

    # --- writing --------------------------------------------------------------------------

    def _write(
        self,
        work: dict[uuid.UUID, _Work],
        results: list[_Result],
        new_bridges: set[tuple[str, str]],
        now: datetime,
    ) -> None:
        session = self.session
        new = [w for w in work.values() if w.is_new]
        changed = [w for w in work.values() if not w.is_new and w.events]
        seen = [w.state["_id"] for w in work.values() if not w.is_new and not w.events]
        self._check_versions(changed)
        bulk.insert_rows(session, ASSETS, [self._row(w.state, now) for w in new])
        self._update_rows(changed, now)
        self._write_tags(new, changed)
        if new:
            bulk.insert_rows(
                session,
                AssetIdentifier.__table__,
                [r for w in new for r in identifiers.rows(w.state["_id"], w.state)],
            )
        self._rekey([w for w in changed if identifiers.KEY_FIELDS & w.changed])
        for start in range(0, len(seen), IN_CHUNK):
            touch_seen(self.session, bulk.among(self.session, ASSETS.c.id, seen[start : start + IN_CHUNK]), now)
        if new_bridges:
            bulk.insert_rows(
                session, HostBridge.__table__,
                [{"address": a, "hostname": h, "import_run_id": self.run_id, "learnt_at": now}
                 for a, h in sorted(new_bridges)],
            )
        events = [e for w in work.values() for e in w.events]
        audit.record_many(session, self.actor, events)

    def _rekey(self, changed: list[_Work]) -> None:
        """Write only the identifier keys that appeared or went away (aliases mostly grow)."""
        added: list[dict[str, Any]] = []
        removed: list[tuple[uuid.UUID, str]] = []
        for w in changed:
            asset_id, old = w.state["_id"], frozenset(identifiers.keys_for(w.state["_key_values"]))
            new = frozenset(identifiers.keys_for(w.state))
            added += [{"key": k, "asset_id": asset_id} for k in sorted(new - old)]
            removed += [(asset_id, k) for k in sorted(old - new)]
        table = AssetIdentifier.__table__
        for asset_id, key in removed:
            self.session.execute(table.delete().where(table.c.asset_id == asset_id, table.c.key == key))
        bulk.insert_rows(self.session, table, added)

    def _check_versions(self, changed: list[_Work]) -> None:
        """Lock the rows about to change; if anyone changed or removed one since it was read,
        redo the batch."""
        expected = {w.state["_id"]: w.read_version for w in changed}
        ids = list(expected)
        found: dict[uuid.UUID, int] = {}
        for start in range(0, len(ids), IN_CHUNK):
            stmt = select(ASSETS.c.id, ASSETS.c.version).where(
                bulk.among(self.session, ASSETS.c.id, ids[start : start + IN_CHUNK]))
            if bulk.is_postgresql(self.session):
                stmt = stmt.with_for_update()
            found.update(self.session.execute(stmt).tuples().all())
        if found != expected:
            raise _Retry

    def _columns(self, state: dict[str, Any], now: datetime) -> dict[str, Any]:
        """The asset row's columns that a batch writes, from the asset's state as it leaves
        the batch (inserted as a new row, or written over an existing one)."""
        row = {COLUMN.get(f, f): state[f] for f in assets.FIELDS if f != "tags"}
        row.update(
            id=state["_id"], version=state["_version"], updated_at=now, field_sources=state["_sources"],
            updated_by=self.actor.user_id, last_import_id=self.run_id, last_seen_at=now,
            first_seen_at=state["_first_seen_at"] or now,
            search_text=assets.search_text_of(state, state["aliases"], state["tags"]),
        )
        return row

    def _row(self, state: dict[str, Any], now: datetime) -> dict[str, Any]:
        return {
            **self._columns(state, now), "locked_fields": [], "created_at": now,
            "created_by": self.actor.user_id, "deleted_at": None, "deleted_by": None,
            "merged_into": None,
        }

    def _update_rows(self, changed: list[_Work], now: datetime) -> None:
        """Write the changed assets' new state (rows were locked and checked just before)."""
        if not changed:
            return
        rows = [self._columns(w.state, now) for w in changed]
        names = [n for n in rows[0] if n != "id"]
        if bulk.is_postgresql(self.session):
            # one statement for the batch: COPY the new rows into a scratch table, then UPDATE
            # ... FROM it (an UPDATE per asset costs a round trip each)
            scratch = Table("import_changes", MetaData(), *[Column(n, ASSETS.c[n].type) for n in rows[0]])
            self.session.execute(text(
                "CREATE TEMPORARY TABLE import_changes ON COMMIT DROP AS SELECT "
                + ", ".join(f'"{n}"' for n in rows[0]) + " FROM assets WITH NO DATA"
            ))
            bulk.insert_rows(self.session, scratch, rows)
            self.session.execute(text(
                "UPDATE assets SET " + ", ".join(f'"{n}" = c."{n}"' for n in names)
                + " FROM import_changes c WHERE assets.id = c.id"
            ))
            self.session.execute(text("DROP TABLE import_changes"))
            return
        stmt = update(ASSETS).where(ASSETS.c.id == bindparam("_id")).values({n: bindparam(n) for n in names})
        self.session.execute(stmt, [{**r, "_id": r["id"]} for r in rows])

    def _write_tags(self, new: list[_Work], changed: list[_Work]) -> None:
        wanted: dict[uuid.UUID, list[str]] = {}
        for w in new:
            if w.state["tags"]:
                wanted[w.state["_id"]] = list(w.state["tags"])
        for w in changed:
            if "tags" in w.changed:
                wanted[w.state["_id"]] = list(w.state["tags"])
        if not wanted:
            return
        names = sorted({n for tags in wanted.values() for n in tags})
        ids = assets.tag_ids(self.session, names, IN_CHUNK)
        existing: set[tuple[uuid.UUID, int]] = set()
        changed_ids = [w.state["_id"] for w in changed if "tags" in w.changed]
        for start in range(0, len(changed_ids), IN_CHUNK):
            chunk = changed_ids[start : start + IN_CHUNK]
            existing |= set(
                self.session.execute(
                    select(asset_tags.c.asset_id, asset_tags.c.tag_id).where(
                        bulk.among(self.session, asset_tags.c.asset_id, chunk))
                ).tuples()
            )
        links = [
            {"asset_id": asset_id, "tag_id": ids[n]}
            for asset_id, tags in wanted.items()
            for n in tags
            if (asset_id, ids[n]) not in existing
        ]
        bulk.insert_rows(self.session, asset_tags, links)

    def _record(self, results: list[_Result], now: datetime) -> None:
        rows = [
            {
                "run_id": self.run_id, "seq": r.seq, "key": r.key[:600], "outcome": r.outcome,
                # a dry run's new assets do not exist (nor do later records' matches of them)
                "asset_id": None if self.dry and r.asset_id in self.imagined else r.asset_id,
                "conflict_id": None if self.dry else r.conflict_id, "message": r.full_message,
                "changes": r.changes,
                "asset_version": None if self.dry else r.asset_version,
                "fingerprint": r.fingerprint, "seen_at": now,
            }
            for r in results
        ]
        bulk.insert_rows(self.session, ImportRecord.__table__, rows)
        run = self.run
        counts = {o: 0 for o in RecordOutcome}
        for r in results:
            counts[r.outcome] += 1
        run.processed = self.position + len(results)
        run.created += counts[RecordOutcome.created]
        run.updated += counts[RecordOutcome.updated]
        run.unchanged += counts[RecordOutcome.unchanged]
        run.flagged += counts[RecordOutcome.flagged]
        run.failed += counts[RecordOutcome.failed]
        run.skipped += counts[RecordOutcome.skipped]
        errors = [
            {"row": r.row or r.seq, "key": r.key, "message": r.message}
            for r in results
            if r.outcome == RecordOutcome.failed
        ]
        if errors and len(run.row_errors or []) < ROW_ERRORS_MAX:
            run.row_errors = [*(run.row_errors or []), *errors][:ROW_ERRORS_MAX]
        warned = [
            {"row": r.row or r.seq, "key": r.key, "message": "; ".join(r.warnings)}
            for r in results
            if r.warnings and r.outcome != RecordOutcome.failed
        ]
        run.warned = (run.warned or 0) + len(warned)
        if warned and len(run.row_warnings or []) < ROW_ERRORS_MAX:
            run.row_warnings = [*(run.row_warnings or []), *warned][:ROW_ERRORS_MAX]
        run.heartbeat_at = now

    def _remember(
        self, work: dict[uuid.UUID, _Work], new_bridges: set[tuple[str, str]], results: list[_Result]
    ) -> None:
        self.pairs |= new_bridges
        for address, hostname in new_bridges:
            self.bridges.setdefault(address, set()).add(hostname)
            self.bridges.setdefault(hostname, set()).add(address)
        if not self.dry:
            return
        for asset_id, w in work.items():
            if w.is_new or w.events:
                self.overlay_states[asset_id] = w.state
                if w.is_new and not w.changed:
                    keys = w.state["_new_keys"]
                elif w.is_new or identifiers.KEY_FIELDS & w.changed:
                    keys = identifiers.keys_for(w.state)
                else:
                    continue  # its keys did not change: the table has them
                for key in keys:
                    self.overlay_keys.setdefault(key, set()).add(asset_id)
        for r in results:
            if r.asset_id is not None and r.fingerprint:
                self.overlay_fingerprints[r.fingerprint] = r.asset_id


def touch_seen(session: Session, which: Any, now: datetime) -> None:
    """Record that imports saw these assets (`which`: a condition on `assets`). Bookkeeping,
    not a change: no version, no audit event, and at most once per SEEN_REFRESH per asset."""
    session.execute(
        update(ASSETS)
        .where(which, or_(ASSETS.c.last_seen_at.is_(None), ASSETS.c.last_seen_at < now - SEEN_REFRESH))
        .values(last_seen_at=now, updated_at=ASSETS.c.updated_at)
    )


def _same(a: Any, b: Any) -> bool:
    """Equal as stored: `==` first (strings, numbers, enums against their values), then the
    JSON forms (dates, nested values)."""
    return a == b or audit.jsonable(a) == audit.jsonable(b)


def _is_derived_name(fields: dict[str, Any], names: list[str]) -> bool:
    """Whether the record's name is only its endpoint (`host:port/db`, nmap's
    `hostname:port`): such a name is made up by the parser and never renames an asset."""
    name = fields.get("name")
    try:
        if name == derived_name(fields):
            return True
    except RecordError:
        pass
    port = fields.get("port")
    return port is not None and any(name == f"{n}:{port}" or name == f"[{n}]:{port}" for n in names)


def _is_strong(key: str) -> bool:
    return key.startswith(("cloud:", "ep:"))


def _incoming(fields: dict[str, Any]) -> dict[str, Any]:
    """A record's fields as a review item keeps them (JSON values; never a secret)."""
    return {k: audit.jsonable(v) for k, v in fields.items() if k not in ("connection_string", "source")}


def _digest(*parts: Any) -> str:
    return fingerprint(list(parts))


def _messages(exc: ValidationFailed) -> str:
    return "; ".join(f"{f}: {m}" for f, m in exc.errors.items())

"""The import batch's driver: prepare, look up, decide, reconcile, flag, write, record, in one
transaction per batch (see the package's docstring)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.discovery import DiscoveredRecord
from webapp.models import AuditAction, Conflict, ImportRun, RecordOutcome
from webapp.models.base import utcnow
from webapp.services import (
    assets,
    audit,
    bulk,
    crypto,
    identifiers,
    matching,
    observations,
    review_queue,
)
from webapp.services import conflicts as review
from webapp.services import settings as settings_service
from webapp.services.actor import Actor
from webapp.services.errors import ValidationFailed
from webapp.services.pipeline.conflicts import conflicts, flag_duplicate, flag_fields, pair
from webapp.services.pipeline.decide import Decider
from webapp.services.pipeline.items import (
    IMPORT_LOCK,
    NO_LOCKS,
    Item,
    Result,
    Retry,
    Work,
    is_strong,
    messages,
    prepare,
)
from webapp.services.pipeline.lookup import Lookup
from webapp.services.pipeline.reconcile import NO_SAME_RUN_CHECK, Reconciler
from webapp.services.pipeline.write import Writer


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
        # the lookups, with the bridges this run learnt and a dry run's overlay (the assets it
        # would create or change, since it writes nothing)
        self.lookup = Lookup(session)
        self.decider = Decider(self.auto_merge, self.review, self.links)
        self.reconciler = Reconciler(session, self.precedence, self.kind)
        self.writer = Writer(session, run, self.actor)
        self.imagined: set[uuid.UUID] = set()  # the assets a dry run would have created
        # (survivor, other): existing assets a record showed to be one database, merged at the
        # end of the batch
        self.absorbing: list[tuple[uuid.UUID, uuid.UUID]] = []
        # the fields earlier batches of this run reported, per asset (the sets are shared: most
        # records of a file carry the same fields)
        self.observed: dict[uuid.UUID, frozenset[str]] = {}
        self.field_sets: dict[frozenset[str], frozenset[str]] = {}
        if run.processed and not self.dry:  # a run resumed: its earlier batches are committed
            for asset_id, names in observations.fields_written_in_run(session, run.id).items():
                self.observed[asset_id] = self._shared(frozenset(names))
        # this batch's reports: {asset: {field: (JSON value, record key or None)}}: what the
        # run said first about each field of the asset (a contradiction waits for a person)
        self.said: dict[uuid.UUID, dict[str, tuple[Any, str | None]]] = {}
        self.unwritten: set[tuple[uuid.UUID, str]] = set()  # said, but already kept as it is

    # --- driver ---------------------------------------------------------------------------

    def process(self, batch: Sequence[DiscoveredRecord]) -> None:
        for attempt in range(5):
            # a batch whose assets changed under it (people editing them) reads them locked on
            # its next attempts: the edits then wait for the batch instead of failing it again
            self.lookup.lock_rows = attempt > 0
            try:
                self._process(batch)
                return
            except Retry:
                self.session.rollback()
        raise RuntimeError("assets kept changing under the import; five attempts failed")

    def _process(self, batch: Sequence[DiscoveredRecord]) -> None:
        # Batches of concurrent imports take turns, so each sees what the others committed:
        # two runs of one file at once must not both create the same database.
        bulk.advisory_lock(self.session, IMPORT_LOCK)
        now = utcnow()
        lookup = self.lookup
        items = [prepare(self.position + i + 1, record) for i, record in enumerate(batch)]
        valid = [it for it in items if it.record.error is None]
        fp_hits = lookup.fingerprint_hits(valid)
        done = lookup.already_applied(valid, fp_hits)
        rest = [it for it in valid if it.seq not in done]
        new_bridges = lookup.expand(rest)
        key_hits = lookup.key_hits(rest)
        # assets a record may merge into are loaded whole; those only blocking keys brought
        # (weak evidence never merges) only as far as scoring needs
        ids = {a for key, hit in key_hits.items() if is_strong(key) for a in hit}
        ids |= {fp_hits[it.fingerprint][0] for it in rest if it.fingerprint in fp_hits}
        states = lookup.load(ids)
        states.update(lookup.load_light({a for hit in key_hits.values() for a in hit} - states.keys()))
        # what earlier batches of this run said about these assets (two records of one source
        # must not contradict each other unnoticed); a dry run writes no observations
        earlier = {a: self.observed[a] for a in states.keys() & self.observed.keys()} if not self.dry else {}
        self.said = {
            asset_id: {f: (v, None) for f, v in fields.items()}
            for asset_id, fields in observations.reported(self.session, self.kind, earlier).items()
        } if earlier else {}
        self.unwritten = {(a, f) for a, fields in self.said.items() for f in fields}
        work: dict[uuid.UUID, Work] = {}
        results: list[Result] = []
        for it in items:
            if it.seq in done:
                results.append(done[it.seq])
                # identical to a record applied to the asset as it is: its values are kept already
                self._observe(it, done[it.seq].asset_id, write=False)
                continue
            result = self._one(it, key_hits, fp_hits, states, work, now)
            if result.asset_id in states and result.outcome != RecordOutcome.flagged:
                result.asset_version = states[result.asset_id]["_version"]
            results.append(result)
        asked = conflicts(self.session, self.run_id, results, now)
        if not self.dry:
            self.writer.write(work, results, new_bridges, now)
            # after the assets: a question may name one this batch created
            bulk.insert_rows(self.session, Conflict.__table__, asked)
            if asked:  # reviewers hear of it (at most once an hour), with this batch
                review_queue.announce_waiting(self.session, now)
            reported = self._reports()
            observations.report(self.session, reported, source=self.kind, seen_at=now,
                                import_run_id=self.run_id,
                                new_assets={a for a, w in work.items() if w.is_new})
        if self.dry:
            self.imagined |= {asset_id for asset_id, w in work.items() if w.is_new}
        if self.absorbing and not self.dry:
            self._absorb(results)
        self.writer.record(results, self.position, self.imagined, now)
        try:
            self.session.commit()
        except IntegrityError:
            raise Retry from None
        self.position += len(batch)
        lookup.remember(work, new_bridges, results, self.dry)
        if not self.dry:
            for asset_id, fields in self.said.items():
                self.observed[asset_id] = self._shared(self.observed.get(asset_id, frozenset()).union(fields))

    def _shared(self, names: frozenset[str]) -> frozenset[str]:
        return self.field_sets.setdefault(names, names)

    def _observe(self, it: Item, asset_id: uuid.UUID | None, *, write: bool = True) -> None:
        """Keep what the record reported about the asset, whether or not it won."""
        if asset_id is None:
            return
        said = self.said.setdefault(asset_id, {})
        for name, value in observations.observable(it.fields).items():
            if name == "name" and it.name_derived:  # a made-up `host:port` name is no report
                continue
            earlier = said.get(name)
            if (earlier is not None and name not in NO_SAME_RUN_CHECK
                    and not observations.equivalent(name, earlier[0], value)):
                continue  # disputed within the run: the first value stands, the review item has both
            said[name] = (value, it.record.key)
            if write:
                self.unwritten.discard((asset_id, name))
            else:
                self.unwritten.add((asset_id, name))

    def _reports(self) -> dict[tuple[uuid.UUID, str], Any]:
        """This batch's observations to write (not what is kept already as it is)."""
        return {(asset_id, name): value for asset_id, fields in self.said.items()
                for name, (value, _key) in fields.items() if (asset_id, name) not in self.unwritten}

    # --- one record -----------------------------------------------------------------------

    def _one(
        self,
        it: Item,
        key_hits: dict[str, set[uuid.UUID]],
        fp_hits: dict[str, tuple[uuid.UUID, int | None]],
        states: dict[uuid.UUID, dict[str, Any]],
        work: dict[uuid.UUID, Work],
        now: datetime,
    ) -> Result:
        record = it.record
        if record.error is not None:
            return Result(it.seq, record.row, record.key, RecordOutcome.failed, message=record.error,
                          warnings=list(record.warnings))
        result = Result(it.seq, record.row, record.key, RecordOutcome.unchanged, fingerprint=it.fingerprint,
                        warnings=list(record.warnings))
        decision = self.decider.identify(it, key_hits, fp_hits, states)
        if decision.skip is not None:
            result.outcome, result.message = RecordOutcome.skipped, decision.skip
            return result
        if decision.flag is not None:
            return flag_duplicate(it, states[decision.flag[0]], decision.flag[1], result)
        if decision.asset_id is None:
            created = self._create(it, key_hits, states, work, result, now)
            if decision.link is not None and created.outcome == RecordOutcome.created:
                self._ask_about(it, created, states, *decision.link)
            return created
        asset_id = decision.asset_id
        if states[asset_id].get("_light"):  # found by a blocking key (a medium match): load it whole
            states.update(self.lookup.load({asset_id}))
        state = states[asset_id]
        result.asset_id = asset_id
        for other, score in decision.duplicates:
            result.pairs.append(pair(it, state, states[other], score, self.run.label))
        for other in decision.absorb:
            self.absorbing.append((asset_id, other))
            result.message = (f"Also names “{states[other]['name']}” by its host and port: merged "
                              "into this asset.")
        if state["_deleted_at"] is not None:
            result.outcome = RecordOutcome.skipped
            result.message = (
                f"Matches “{state['name']}”, which is in the trash; restore it to let imports "
                "update it."
            )
            return result
        if decision.how == "sighting":  # confirms the asset; its fields are left alone
            work.setdefault(asset_id, Work(state, False, state["_version"]))
            result.message = f"An open port the scanner could not fingerprint: a sighting of “{state['name']}”."
            return result
        raw, held, why = self.reconciler.reconcile(state, it, decision.how, self.said.get(asset_id))
        if held:
            flag_fields(it, state, held, result, why)
        if not raw:
            work.setdefault(asset_id, Work(state, False, state["_version"]))
            self._observe(it, asset_id)
            return result
        try:
            cleaned = assets.validate(raw, partial=True)
        except ValidationFailed as exc:
            result.outcome = RecordOutcome.failed
            result.message = messages(exc)
            result.conflict = None
            return result
        self._observe(it, asset_id)
        entry = work.setdefault(asset_id, Work(state, False, state["_version"]))
        diff = self.reconciler.apply(state, cleaned)
        if not diff:
            return result
        entry.changed.update(diff)
        self.reconciler.mark_sources(state, diff)
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

    def _create(
        self,
        it: Item,
        key_hits: dict[str, set[uuid.UUID]],
        states: dict[uuid.UUID, dict[str, Any]],
        work: dict[uuid.UUID, Work],
        result: Result,
        now: datetime,
    ) -> Result:
        data = {k: v for k, v in it.fields.items() if k != "source"}
        try:
            cleaned = assets.validate(data, partial=False)
        except ValidationFailed as exc:
            result.outcome = RecordOutcome.failed
            result.message = messages(exc)
            return result
        asset_id = uuid.uuid4()
        state: dict[str, Any] = {f: assets.EMPTY.get(f) for f in assets.FIELDS}
        state["aliases"], state["tags"], state["metadata"] = [], [], {}
        state.update(cleaned)
        for name, default in assets.NOT_NULL_DEFAULTS.items():
            if state.get(name) is None:
                state[name] = default
        state["source"] = self.run.source
        state["_sources"] = self.reconciler.sources_of_new(cleaned)
        if state.get("connection_string"):
            state["connection_string"] = crypto.encrypt(self.session, state["connection_string"])
        state.update(_id=asset_id, _version=1, _deleted_at=None, _locked=NO_LOCKS,
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
        work[asset_id] = Work(state, True, 1, events)
        state["_new_keys"] = identifiers.keys_for(state)
        for key in state["_new_keys"]:
            key_hits.setdefault(key, set()).add(asset_id)
        result.outcome = RecordOutcome.created
        result.asset_id = asset_id
        self._observe(it, asset_id)
        return result

    # --- evidence that joins ----------------------------------------------------------------

    def _ask_about(
        self, it: Item, result: Result, states: dict[uuid.UUID, dict[str, Any]],
        candidate: uuid.UUID, score: matching.Score,
    ) -> None:
        """Weak evidence never merges: the record became its own asset, and a reviewer is asked
        whether it is the candidate's database (SPEC §6)."""
        mine, theirs = states[result.asset_id], states[candidate]
        question = pair(it, theirs, mine, score, self.run.label)
        question["reasons"][0] = (f"record {it.record.key} of {self.run.label} was created as "
                                  f"“{mine['name']}”; weak evidence says it may be “{theirs['name']}”")
        result.pairs.append(question)
        result.message = (f"Created; possibly the same database as “{theirs['name']}” (confidence "
                          f"{score.confidence:.0%}); waiting in the review queue.")

    def _absorb(self, results: list[Result]) -> None:
        """Merge the assets records of this batch showed to be one database (strong evidence
        naming both), as a reviewer's merge would, audited as the import; the batch's records
        then point at the survivors."""
        into: dict[uuid.UUID, uuid.UUID] = {}

        def final(asset_id: uuid.UUID) -> uuid.UUID:
            while asset_id in into:
                asset_id = into[asset_id]
            return asset_id

        for survivor, other in self.absorbing:
            survivor, other = final(survivor), final(other)
            if survivor == other:
                continue
            review.merge_assets(self.session, self.actor, survivor_id=survivor, other_id=other, commit=False)
            into[other] = survivor
        self.absorbing = []
        for r in results:
            if r.asset_id in into:
                r.asset_id = final(r.asset_id)


"""Identification: which asset, if any, a record describes (SPEC §6).

Pure: it reads the record (`Item`), the assets its keys named (`key_hits`), the identical
records seen before (`fp_hits`) and the candidates' states, all given; it touches no database,
so it is unit-tested on its own. The candidates' states get a cache of their host names
(`_names`), as `matching.score` reads them.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from typing import Any

from webapp.services import identifiers, matching
from webapp.services.pipeline.items import BLOCK_MAX, Decision, Item


class Decider:
    """Decides with a run's thresholds (`auto_merge`, `review`) and the replication links
    stated in its file (a replica never merges with its primary).

    The outcome follows the level of the best evidence (SPEC §6): strong merges; medium merges
    when its confidence reaches `auto_merge` with nothing against it and no other candidate as
    good, and otherwise goes to review, never to "create"; weak never merges: the record is
    created and a reviewer is asked whether the new asset duplicates the candidate."""

    def __init__(self, auto_merge: float, review: float, links: Collection[tuple[str, str]] = ()) -> None:
        self.auto_merge = auto_merge
        self.review = review
        self.links = links

    def identify(
        self,
        it: Item,
        key_hits: dict[str, set[uuid.UUID]],
        fp_hits: dict[str, tuple[uuid.UUID, int | None]],
        states: dict[uuid.UUID, dict[str, Any]],
    ) -> Decision:
        """Strong identifiers first (SPEC §6), then an identical record seen before, then
        the medium and weak evidence of the candidates the blocking keys brought. A record
        matched on a strong identifier also brings up the other existing assets its evidence
        ties to the match: those it names as strongly, by names it carries itself, are the same
        database and merge into the match (`absorb`); the others are possible duplicates of it,
        for a reviewer."""
        if it.record.sighting_only:
            return self.sighting(it, key_hits, states)
        near = set().union(*(key_hits.get(k, set()) for k in it.endpoint_keys))
        # a blocking key that names more than BLOCK_MAX assets (assets this batch created
        # included) tells nothing: scoring them all would make the batch quadratic
        weak = set().union(*(found for k in it.block_keys
                             if len(found := key_hits.get(k, set())) <= BLOCK_MAX)) - near
        decision = self.decide(it, near, weak, fp_hits, key_hits, states)
        if decision.asset_id is not None and decision.how in ("cloud", "endpoint"):
            found = self.connected(it, decision.asset_id, near | weak, states)
            decision.absorb = [a for a, s in found if self.absorbable(it, decision.asset_id, a, s, states)]
            decision.duplicates = [(a, s) for a, s in found if a not in decision.absorb]
        return decision

    def sighting(
        self, it: Item, key_hits: dict[str, set[uuid.UUID]], states: dict[uuid.UUID, dict[str, Any]]
    ) -> Decision:
        """An open port a scanner could not fingerprint (SPEC §6): a sighting of the asset that
        already has this address and port (a strong endpoint key; a live one first), never a
        match on weaker evidence, never a create."""
        hits = sorted(set().union(*(key_hits.get(k, set()) for k in it.endpoint_keys)) & states.keys(), key=str)
        hits.sort(key=lambda a: states[a]["_deleted_at"] is not None)
        if hits:
            return Decision(hits[0], "sighting")
        return Decision(skip="An open port the scanner could not fingerprint, at an address and port no "
                             "asset has: nothing to confirm, and no asset is created from it.")

    def decide(
        self,
        it: Item,
        near: set[uuid.UUID],
        weak: set[uuid.UUID],
        fp_hits: dict[str, tuple[uuid.UUID, int | None]],
        key_hits: dict[str, set[uuid.UUID]],
        states: dict[uuid.UUID, dict[str, Any]],
    ) -> Decision:
        if it.cloud_key and key_hits.get(it.cloud_key):
            return Decision(min(key_hits[it.cloud_key], key=str), "cloud")
        strong = [(a, s) for a, s in self.scores(it, near, states) if s.strong]
        if len(strong) > 1:  # two databases on one endpoint: the database name tells them apart
            database = it.fields.get("database_name")
            strong = [(a, s) for a, s in strong if states[a]["database_name"] == database] or strong
        if len(strong) > 1:  # an address reused by another server: its version tells them apart
            strong = [(a, s) for a, s in strong if not s.doubts] or strong
        if len(strong) == 1:
            asset_id, score = strong[0]
            if score.confidence >= self.auto_merge:
                return Decision(asset_id, "endpoint")
            return Decision(flag=strong[0])
        if len(strong) > 1:
            # the record names its own host first: the asset known by it is the match
            own = it.names[0] if it.names else None
            strong.sort(key=lambda p: (identifiers.host_form(states[p[0]]["host"] or "") != own, str(p[0])))
            (asset_id, score), others = strong[0], strong[1:]
            pairs = [(o, matching.score(states[asset_id], it.all_names, states[o], linked=self.links))
                     for o, _ in others]
            if score.confidence >= self.auto_merge and all(p.veto is None for _, p in pairs):
                # the record's evidence (a bridge, an alias) shows them to be one database:
                # it updates the first, and the others merge into it or go to a reviewer
                return Decision(asset_id, "endpoint")
            names = ", ".join(f"“{states[a]['name']}”" for a, _ in strong[:5])
            score.reasons.append(f"ambiguous: the endpoint matches {len(strong)} assets ({names})")
            return Decision(flag=(asset_id, score))
        found = fp_hits.get(it.fingerprint or "")
        if found is not None and found[0] in states:
            return Decision(found[0], "fingerprint")
        live = [(a, s) for a, s in self.scores(it, weak | near, states)
                if states[a]["_deleted_at"] is None and s.veto is None]
        best = sorted(live, key=lambda pair: (-pair[1].confidence, str(pair[0])))
        medium = [(a, s) for a, s in best if s.level == "medium"]
        if medium:
            asset_id, score = medium[0]
            if score.confidence >= self.auto_merge and not score.doubts and len(medium) == 1:
                return Decision(asset_id, "medium")
            if len(medium) > 1:
                score.reasons.append(f"ambiguous: medium evidence for {len(medium)} assets")
            return Decision(flag=(asset_id, score))  # medium never creates
        weak_level = [(a, s) for a, s in best if s.level == "weak" or s.confidence >= self.review]
        if weak_level:
            return Decision(link=weak_level[0])  # created, and a reviewer asked
        return Decision()

    def connected(
        self, it: Item, asset_id: uuid.UUID, candidates: set[uuid.UUID], states: dict[uuid.UUID, dict[str, Any]]
    ) -> list[tuple[uuid.UUID, matching.Score]]:
        """Other live assets this record also describes with evidence of some level, to merge
        or to ask about, with the record's evidence for each; never one that could not be the
        matched asset's database, nor one the evidence doubts."""
        found = []
        chosen = states[asset_id]
        for other, score in self.scores(it, candidates - {asset_id}, states):
            if states[other]["_deleted_at"] is not None or score.veto or score.doubts:
                continue
            if score.level is None and score.confidence < self.review:
                continue
            if matching.score(chosen, identifiers.names(chosen), states[other], linked=self.links).veto:
                continue  # e.g. another database on the same server
            found.append((other, score))
        return found

    def absorbable(
        self, it: Item, asset_id: uuid.UUID, other: uuid.UUID, score: matching.Score,
        states: dict[uuid.UUID, dict[str, Any]],
    ) -> bool:
        """Whether `other` is the matched asset's database by strong evidence alone: the record
        names both by host and port, each is known only by names the record carries itself
        (an address it was scanned at, the names it answers to), and their engines, versions
        and database names agree."""
        if not score.strong:
            return False
        own = set(it.names) | set(it.ips)
        chosen, that = states[asset_id], states[other]
        for state in (chosen, that):
            if state.get("_light") or not set(identifiers.names(state)) <= own:
                return False
        if chosen.get("cloud_resource_id") and that.get("cloud_resource_id"):
            return False  # two cloud resources are never one by an endpoint
        if matching.versions_compatible(chosen["engine"], chosen.get("engine_version"),
                                        that.get("engine_version")) is False:
            return False
        ours, theirs = chosen.get("database_name"), that.get("database_name")
        return not (ours and theirs and ours.lower() != theirs.lower())

    def scores(
        self, it: Item, ids: Iterable[uuid.UUID], states: dict[uuid.UUID, dict[str, Any]]
    ) -> list[tuple[uuid.UUID, matching.Score]]:
        scored = []
        for asset_id in sorted(ids, key=str):
            state = states.get(asset_id)
            if state is None:
                continue
            if "_names" not in state:  # kept until host or aliases change (`Reconciler.apply`)
                state["_names"] = identifiers.names(state)
            scored.append((asset_id, matching.score(it.fields, it.all_names, state, linked=self.links)))
        return scored

"""Pairwise scoring of matching outcomes against a labelled corpus (pure functions, no database).

A record is identified by `(file, record key)`. The labels give each record the real database
(entity) it describes; two records are a *true pair* when their labels are equal.

What the import did is summed up per record as
* `assets[record]`: the asset the record ended on, after following `merged_into` chains (the
  caller resolves them, see `resolve`), or None when it left no asset (flagged and held for
  review, skipped, failed);
* `flags[record]`: the assets a `possible_duplicate` conflict of this record names as the
  candidate it may duplicate;
* `asset_links`: pairs of existing assets that an open `possible_duplicate` conflict (with
  `duplicate_id`) says may be one database.

A pair is *merged* when both records ended on the same asset. A pair that is not merged is
*flagged* when a reviewer answering the open conflicts would bring the two together: the review
graph has a node per asset and one per asset-less record, and an edge per conflict (record ->
candidate, asset <-> asset); a true pair is flagged-correct when its two nodes are connected by
edges that each join nodes sharing a label (the edges a perfect reviewer would accept). A pair
with different labels is a *wrong flag* when its two nodes are joined directly by an edge.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from itertools import combinations
from pathlib import Path
from typing import Any

from webapp.discovery import DiscoveredRecord, parse

RecordId = tuple[str, str]  # (file, record key)
Pair = tuple[RecordId, RecordId]  # sorted
Node = tuple[str, ...]  # ("asset", id) or ("record", file, key)


@dataclass(frozen=True)
class Predictions:
    assets: Mapping[RecordId, str | None]
    flags: Mapping[RecordId, Collection[str]] = field(default_factory=dict)
    asset_links: Collection[tuple[str, str]] = ()


@dataclass
class Score:
    records: int
    entities: int
    true_pairs: int
    merged_correct: list[Pair]
    flagged_correct: list[Pair]
    missed: list[Pair]
    wrong_merges: list[Pair]
    wrong_flags: list[Pair]

    @property
    def recall_auto(self) -> float:
        return len(self.merged_correct) / self.true_pairs if self.true_pairs else 1.0

    @property
    def recall_any(self) -> float:
        found = len(self.merged_correct) + len(self.flagged_correct)
        return found / self.true_pairs if self.true_pairs else 1.0

    @property
    def merge_precision(self) -> float:
        merged = len(self.merged_correct) + len(self.wrong_merges)
        return len(self.merged_correct) / merged if merged else 1.0


class Corpus:
    """A labelled corpus: a directory of discovery files and its `labels.json` (`files`,
    `sources`, `records` {file: {record key: label}}, `notes`, `cases`), parsed once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._parsed: dict[str, list[DiscoveredRecord]] = {}

    @cached_property
    def doc(self) -> dict[str, Any]:
        return json.loads((self.directory / "labels.json").read_text(encoding="utf-8"))

    @property
    def files(self) -> list[str]:
        return list(self.doc["files"])

    def parsed(self, file: str) -> list[DiscoveredRecord]:
        if file not in self._parsed:
            self._parsed[file] = parse((self.directory / file).read_bytes(), filename=file).records
        return self._parsed[file]

    def labelled(self) -> dict[RecordId, str]:
        return labels_of(self.doc["records"])

    def records_of(self, label: str) -> list[DiscoveredRecord]:
        """The parsed records labelled `label`, file by file."""
        return [record for file in self.files for record in self.parsed(file)
                if self.doc["records"][file].get(record.key) == label]


def labels_of(records: Mapping[str, Mapping[str, str]]) -> dict[RecordId, str]:
    """`{file: {key: label}}` (labels.json's "records") as `{(file, key): label}`."""
    return {(file, key): label for file, keys in records.items() for key, label in keys.items()}


def resolve(asset_id: str | None, merged_into: Mapping[str, str | None]) -> str | None:
    """The surviving asset: follow `merged_into` until an asset that was not merged away."""
    seen: set[str] = set()
    while asset_id is not None and merged_into.get(asset_id) and asset_id not in seen:
        seen.add(asset_id)
        asset_id = merged_into[asset_id]
    return asset_id


def true_pairs(labels: Mapping[RecordId, str]) -> list[Pair]:
    by_label: dict[str, list[RecordId]] = defaultdict(list)
    for record, label in labels.items():
        by_label[label].append(record)
    return sorted(
        pair for records in by_label.values() for pair in combinations(sorted(records), 2)
    )


def _node(record: RecordId, assets: Mapping[RecordId, str | None]) -> Node:
    asset = assets.get(record)
    return ("asset", asset) if asset is not None else ("record", *record)


class _Components:
    """Union-find over review-graph nodes."""

    def __init__(self) -> None:
        self.parent: dict[Node, Node] = {}

    def find(self, node: Node) -> Node:
        parent = self.parent.setdefault(node, node)
        if parent != node:
            parent = self.parent[node] = self.find(parent)
        return parent

    def join(self, a: Node, b: Node) -> None:
        self.parent[self.find(a)] = self.find(b)


def review_edges(predictions: Predictions) -> list[tuple[Node, Node]]:
    edges: list[tuple[Node, Node]] = []
    for record, candidates in predictions.flags.items():
        here = _node(record, predictions.assets)
        edges += [(here, ("asset", c)) for c in candidates if ("asset", c) != here]
    edges += [(("asset", a), ("asset", b)) for a, b in predictions.asset_links if a != b]
    return edges


def score(labels: Mapping[RecordId, str], predictions: Predictions) -> Score:
    """Pairwise figures of `predictions` against `labels` (every labelled record is scored;
    a record missing from `predictions.assets` counts as having left no asset)."""
    assets = predictions.assets
    node_of = {record: _node(record, assets) for record in labels}
    labels_at: dict[Node, set[str]] = defaultdict(set)
    for record, node in node_of.items():
        labels_at[node].add(labels[record])
    edges = review_edges(predictions)
    accepted = _Components()
    adjacent: set[frozenset[Node]] = set()
    for a, b in edges:
        adjacent.add(frozenset((a, b)))
        if labels_at[a] & labels_at[b]:
            accepted.join(a, b)

    merged_correct: list[Pair] = []
    flagged_correct: list[Pair] = []
    missed: list[Pair] = []
    for a, b in true_pairs(labels):
        if node_of[a] == node_of[b] and node_of[a][0] == "asset":
            merged_correct.append((a, b))
        elif accepted.find(node_of[a]) == accepted.find(node_of[b]):
            flagged_correct.append((a, b))
        else:
            missed.append((a, b))

    wrong_merges: list[Pair] = []
    wrong_flags: list[Pair] = []
    by_node: dict[Node, list[RecordId]] = defaultdict(list)
    for record, node in node_of.items():
        by_node[node].append(record)
    for records in by_node.values():
        for a, b in combinations(sorted(records), 2):
            if labels[a] != labels[b] and node_of[a][0] == "asset":
                wrong_merges.append((a, b))
    for pair in adjacent:
        if len(pair) != 2:
            continue
        x, y = sorted(pair)
        for a in by_node.get(x, []):
            for b in by_node.get(y, []):
                if labels[a] != labels[b]:
                    wrong_flags.append((min(a, b), max(a, b)))

    return Score(
        records=len(labels),
        entities=len(set(labels.values())),
        true_pairs=len(merged_correct) + len(flagged_correct) + len(missed),
        merged_correct=merged_correct,
        flagged_correct=flagged_correct,
        missed=missed,
        wrong_merges=sorted(wrong_merges),
        wrong_flags=sorted(set(wrong_flags)),
    )


def _percent(part: float) -> str:
    return f"{100 * part:5.1f}%"


def report(
    result: Score,
    labels: Mapping[RecordId, str],
    *,
    title: str = "Matching corpus",
    describe: Callable[[RecordId], str] | None = None,
    notes: Mapping[str, str] | None = None,
    targets: Mapping[str, float] | None = None,
) -> str:
    """A readable report: the figures, then every missed, flagged, wrong-merged and
    wrong-flagged pair.

    `describe(record)` adds what happened to a record (outcome, asset); `notes` (label -> text)
    explain the entities of missed pairs; `targets` (`recall_any`, `recall_auto`) are shown
    next to the figures."""
    targets = targets or {}
    n = result.true_pairs

    def share(count: int) -> str:
        return _percent(count / n) if n else "    -"

    def target(name: str) -> str:
        return f"target >= {_percent(targets[name]).strip()}" if name in targets else ""

    found = len(result.merged_correct) + len(result.flagged_correct)
    lines = [
        f"{title}: {result.records} records, {result.entities} entities, {n} true duplicate pairs",
        "",
        f"  {'':34}{'pairs':>6}  {'of true':>7}",
        f"  {'merged automatically (recall_auto)':34}{len(result.merged_correct):>6}  "
        f"{share(len(result.merged_correct)):>7}  {target('recall_auto')}",
        f"  {'flagged for review':34}{len(result.flagged_correct):>6}  "
        f"{share(len(result.flagged_correct)):>7}",
        f"  {'merged or flagged (recall_any)':34}{found:>6}  {share(found):>7}  "
        f"{target('recall_any')}",
        f"  {'missed':34}{len(result.missed):>6}  {share(len(result.missed)):>7}",
        f"  {'wrong automatic merges':34}{len(result.wrong_merges):>6}  {'':7}  target 0",
        f"  {'wrong flags':34}{len(result.wrong_flags):>6}",
        f"  {'pairwise precision of merges':34}{'':>6}  {_percent(result.merge_precision):>7}",
    ]

    def show(record: RecordId) -> str:
        text = f"{record[0]} {record[1]}"
        return f"{text} ({describe(record)})" if describe else text

    def section(heading: str, pairs: Iterable[Pair], with_notes: bool) -> None:
        pairs = list(pairs)
        lines.extend(["", f"{heading} ({len(pairs)}):"])
        if not pairs:
            lines.append("  none")
            return
        grouped: dict[tuple[str, str], list[Pair]] = defaultdict(list)
        for a, b in pairs:
            if labels[a] > labels[b]:  # one heading per pair of labels, in label order
                a, b = b, a
            grouped[(labels[a], labels[b])].append((a, b))
        for (la, lb), group in sorted(grouped.items()):
            lines.append(f"  [{la}]" if la == lb else f"  [{la}] vs [{lb}]")
            if with_notes and notes and la in notes:
                lines.append(f"    why it is one database: {notes[la]}")
            for a, b in group:
                lines.append(f"    {show(a)}")
                lines.append(f"      <-> {show(b)}")

    section("Missed true pairs", result.missed, with_notes=True)
    section(
        "Flagged true pairs (found, left to a reviewer)", result.flagged_correct, with_notes=False
    )
    section("Wrong automatic merges", result.wrong_merges, with_notes=False)
    section("Wrong flags", result.wrong_flags, with_notes=False)
    return "\n".join(lines) + "\n"

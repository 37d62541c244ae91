"""The pairwise scoring of matching outcomes, on tiny hand-made inputs."""

from __future__ import annotations

import pytest

from tests.matching.scoring import Predictions, labels_of, report, resolve, score, true_pairs

A1, A2, A3 = ("a.csv", "csv:1"), ("b.xml", "nmap:1"), ("c.json", "json:1")
B1, B2 = ("a.csv", "csv:2"), ("b.xml", "nmap:2")
C1 = ("c.json", "json:2")
LABELS = {A1: "alpha", A2: "alpha", A3: "alpha", B1: "beta", B2: "beta", C1: "gamma"}


def test_true_pairs_are_the_pairs_of_records_with_one_label():
    assert true_pairs(LABELS) == sorted([(A1, A2), (A1, A3), (A2, A3), (B1, B2)])
    assert true_pairs({A1: "x", B1: "y"}) == []


def test_labels_of_flattens_the_records_map():
    assert labels_of({"a.csv": {"csv:1": "alpha"}, "b.xml": {"nmap:1": "alpha"}}) == {
        A1: "alpha",
        A2: "alpha",
    }


def test_resolve_follows_merged_into_chains_and_stops_on_a_cycle():
    merged = {"x": "y", "y": "z", "z": None, "p": "q", "q": "p"}
    assert resolve("x", merged) == "z"
    assert resolve("z", merged) == "z"
    assert resolve("unknown", merged) == "unknown"
    assert resolve(None, merged) is None
    assert resolve("p", merged) in {"p", "q"}  # a corrupt cycle does not loop forever


def test_everything_merged_right_is_perfect():
    result = score(LABELS, Predictions({A1: "1", A2: "1", A3: "1", B1: "2", B2: "2", C1: "3"}))
    assert result.true_pairs == 4
    assert len(result.merged_correct) == 4
    assert result.flagged_correct == result.missed == result.wrong_merges == []
    assert result.recall_auto == result.recall_any == result.merge_precision == 1.0
    assert (result.records, result.entities) == (6, 3)


def test_nothing_merged_misses_every_true_pair_and_is_vacuously_precise():
    result = score(LABELS, Predictions({r: f"asset-{i}" for i, r in enumerate(LABELS)}))
    assert result.recall_auto == result.recall_any == 0.0
    assert len(result.missed) == 4
    assert result.merge_precision == 1.0


def test_a_wrong_merge_counts_every_pair_of_different_labels_on_one_asset():
    # beta's two records and gamma all ended on asset "2"
    result = score(LABELS, Predictions({A1: "1", A2: "1", A3: "1", B1: "2", B2: "2", C1: "2"}))
    assert result.wrong_merges == [(B1, C1), (B2, C1)]
    assert len(result.merged_correct) == 4
    assert result.merge_precision == pytest.approx(4 / 6)


def test_a_record_flagged_against_the_right_asset_is_flagged_not_merged():
    # A3 is held for review (no asset) with a conflict naming asset "1"
    predictions = Predictions(
        {A1: "1", A2: "1", A3: None, B1: "2", B2: "2", C1: "3"}, flags={A3: ["1"]}
    )
    result = score(LABELS, predictions)
    assert result.merged_correct == [(A1, A2), (B1, B2)]
    assert result.flagged_correct == [(A1, A3), (A2, A3)]
    assert result.missed == []
    assert result.recall_auto == pytest.approx(0.5)
    assert result.recall_any == 1.0


def test_a_flag_against_the_wrong_asset_is_a_wrong_flag_and_the_pair_stays_missed():
    predictions = Predictions(
        {A1: "1", A2: "1", A3: None, B1: "2", B2: "2", C1: "3"}, flags={A3: ["2"]}
    )
    result = score(LABELS, predictions)
    assert result.missed == [(A1, A3), (A2, A3)]
    assert result.wrong_flags == [(B1, A3), (B2, A3)]  # each pair in record order
    assert result.wrong_merges == []


def test_a_duplicate_conflict_between_two_existing_assets_flags_their_records():
    # alpha ended on two assets; an open conflict says they may be one
    predictions = Predictions(
        {A1: "1", A2: "1", A3: "9", B1: "2", B2: "2", C1: "3"}, asset_links=[("9", "1")]
    )
    result = score(LABELS, predictions)
    assert result.flagged_correct == [(A1, A3), (A2, A3)]
    assert result.recall_any == 1.0


def test_two_held_records_flagged_against_one_asset_are_flagged_together():
    labels = {A1: "alpha", A2: "alpha", A3: "alpha"}
    predictions = Predictions({A1: "1", A2: None, A3: None}, flags={A2: ["1"], A3: ["1"]})
    result = score(labels, predictions)
    assert result.flagged_correct == [(A1, A2), (A1, A3), (A2, A3)]


def test_a_wrong_flag_does_not_connect_a_true_pair():
    # A3 and A1 are only connected through beta's asset: a reviewer would dismiss both flags
    labels = {A1: "alpha", A3: "alpha", B1: "beta"}
    predictions = Predictions(
        {A1: "1", A3: None, B1: "2"}, asset_links=[("1", "2")], flags={A3: ["2"]}
    )
    result = score(labels, predictions)
    assert result.missed == [(A1, A3)]
    assert result.wrong_flags == [(A1, B1), (B1, A3)]


def test_records_without_an_asset_never_count_as_merged():
    labels = {A1: "alpha", A2: "alpha"}
    result = score(labels, Predictions({A1: None, A2: None}))
    assert result.missed == [(A1, A2)]
    assert result.wrong_merges == []
    # a record absent from the predictions is the same as one without an asset
    assert score(labels, Predictions({})).missed == [(A1, A2)]


def test_no_true_pairs_scores_full_recall():
    result = score({A1: "alpha", B1: "beta"}, Predictions({A1: "1", B1: "2"}))
    assert result.true_pairs == 0
    assert result.recall_any == result.recall_auto == 1.0


def test_report_lists_figures_missed_and_wrong_pairs_with_labels():
    predictions = Predictions(
        {A1: "1", A2: "1", A3: None, B1: "2", B2: "3", C1: "2"}, flags={A3: ["2"]}
    )
    result = score(LABELS, predictions)
    text = report(
        result,
        LABELS,
        describe=lambda record: f"outcome of {record[1]}",
        notes={"beta": "same host and port"},
        targets={"recall_any": 0.95, "recall_auto": 0.8},
    )
    assert "6 records, 3 entities, 4 true duplicate pairs" in text
    assert "merged automatically (recall_auto)" in text and "target >= 80.0%" in text
    assert "Missed true pairs (3):" in text
    assert "[beta]" in text and "why it is one database: same host and port" in text
    assert "Wrong automatic merges (1):" in text and "[beta] vs [gamma]" in text
    assert "Wrong flags (2):" in text and "[alpha] vs [beta]" in text
    assert "c.json json:1 (outcome of json:1)" in text

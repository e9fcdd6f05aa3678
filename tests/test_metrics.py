"""Entity-level scores agree with seqeval; subsets, averages and modes behave as documented."""

from __future__ import annotations

import json

import pytest
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from nerlit.evaluation.metrics import entity_scores
from nerlit.evaluation.report import to_markdown, write_report

GOLD = [
    ["B-per", "I-per", "O", "B-geo", "O", "B-tim"],
    ["B-org", "I-org", "O", "B-geo", "I-geo", "O"],
    ["O", "B-per", "O", "O", "B-gpe", "O"],
]
PRED = [
    ["B-per", "I-per", "O", "B-geo", "O", "O"],
    ["B-org", "O", "O", "B-geo", "I-geo", "B-tim"],
    ["O", "I-per", "O", "O", "B-gpe", "O"],
]


def test_matches_seqeval_strict_report():
    ours = entity_scores(GOLD, PRED, mode="strict")
    theirs = classification_report(GOLD, PRED, mode="strict", scheme=IOB2, output_dict=True)
    for entity_type, row in ours["per_type"].items():
        assert row["f1"] == pytest.approx(theirs[entity_type]["f1-score"])
        assert row["support"] == theirs[entity_type]["support"]
    for avg in ("micro", "macro", "weighted"):
        assert ours[avg]["f1"] == pytest.approx(theirs[f"{avg} avg"]["f1-score"])
        assert ours[avg]["precision"] == pytest.approx(theirs[f"{avg} avg"]["precision"])


def test_strict_ignores_stray_inside_tag_but_conlleval_counts_it():
    strict = entity_scores(GOLD, PRED, mode="strict")
    lenient = entity_scores(GOLD, PRED, mode="conlleval")
    assert strict["per_type"]["per"]["recall"] == pytest.approx(0.5)
    assert lenient["per_type"]["per"]["recall"] == pytest.approx(1.0)


def test_reference_subset_is_micro_over_those_types():
    scores = entity_scores(GOLD, PRED, reference_types=["geo", "per"])
    ref = scores["reference"]
    # geo: 2 of 2 found; per: 1 of 2 found (strict); predictions: geo 2, per 1
    assert ref["support"] == 4
    assert ref["recall"] == pytest.approx(3 / 4)
    assert ref["precision"] == pytest.approx(3 / 3)


def test_perfect_and_empty():
    assert entity_scores(GOLD, GOLD)["micro"]["f1"] == 1.0
    nothing = [["O"] * len(s) for s in GOLD]
    assert entity_scores(GOLD, nothing)["micro"]["f1"] == 0.0
    with pytest.raises(ValueError, match="same shape"):
        entity_scores(GOLD, PRED[:2])


def test_report_files(tmp_path):
    scores = entity_scores(GOLD, PRED, reference_types=["geo", "gpe", "org", "per", "tim"])
    write_report(scores, tmp_path, title="fixture")
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert set(saved) >= {"per_type", "micro", "macro", "weighted", "reference"}
    table = (tmp_path / "report.md").read_text()
    assert table == to_markdown(scores, "fixture")
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    assert rows[1:] == [
        "geo",
        "gpe",
        "org",
        "per",
        "tim",
        "micro avg",
        "macro avg",
        "weighted avg",
        "micro avg (geo, gpe, org, per, tim)",
    ]

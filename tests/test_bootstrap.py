"""Bootstrap intervals: counts agree with the scorer, intervals are seeded, sane and fast."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from nerlit.evaluation.bootstrap import (
    Counts,
    add_intervals,
    f1_intervals,
    f1_table,
    group,
    interval_summary,
    sentence_counts,
    unit_index,
)
from nerlit.evaluation.metrics import entity_scores
from nerlit.evaluation.report import to_markdown, write_test_outputs
from tests.test_metrics import GOLD, PRED


def _noisy_split(n: int, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """Gold with per/geo entities and predictions that miss about one in five."""
    rng = np.random.default_rng(seed)
    gold, pred = [], []
    for _ in range(n):
        tags = ["B-per", "I-per", "O", "B-geo", "O"]
        guess = list(tags)
        if rng.random() < 0.2:
            guess[3] = "O"
        if rng.random() < 0.1:
            guess[4] = "B-org"
        gold.append(tags)
        pred.append(guess)
    return gold, pred


def test_summed_counts_give_the_scorers_f1():
    scores = entity_scores(GOLD, PRED, reference_types=["geo", "per"])
    counts = sentence_counts(GOLD, PRED, types=list(scores["per_type"]))
    table = f1_table(counts.values.sum(0), counts.types, ["geo", "per"])
    assert table["micro"] == pytest.approx(scores["micro"]["f1"])
    assert table["reference"] == pytest.approx(scores["reference"]["f1"])
    for kind, row in scores["per_type"].items():
        assert table["per_type"][kind] == pytest.approx(row["f1"])


def test_intervals_are_seeded_contain_the_estimate_and_narrow_with_data():
    gold, pred = _noisy_split(400)
    small = add_intervals(entity_scores(gold[:100], pred[:100]), gold[:100], pred[:100], seed=1)
    again = add_intervals(entity_scores(gold[:100], pred[:100]), gold[:100], pred[:100], seed=1)
    large = add_intervals(entity_scores(gold, pred), gold, pred, seed=1)
    assert small["f1_ci"] == again["f1_ci"]
    for scores in (small, large):
        low, high = scores["f1_ci"]["micro"]
        assert low <= scores["micro"]["f1"] <= high
        for kind, row in scores["per_type"].items():
            assert scores["f1_ci"]["per_type"][kind][0] <= row["f1"]
            assert row["f1"] <= scores["f1_ci"]["per_type"][kind][1]
        assert "f1_ci" not in scores["micro"]  # the rows stay as the scorer made them
    width = lambda s: s["f1_ci"]["micro"][1] - s["f1_ci"]["micro"][0]  # noqa: E731
    assert 0 < width(large) < width(small)  # about half: sqrt(400 / 100)
    assert large["bootstrap"] == {
        "method": "percentile bootstrap",
        "unit": "sentence",
        "units": 400,
        "resamples": 1000,
        "seed": 1,
        "confidence": 0.95,
    }
    # the type with every entity right has a zero-width interval at 1
    assert large["f1_ci"]["per_type"]["per"] == [1.0, 1.0]


def test_documents_are_the_units_when_there_are_enough():
    assert unit_index([None, None]) is None
    assert unit_index(["d1"] * 5) is None  # one document: sentences are resampled
    documents = [f"d{i // 3}" for i in range(90)] + [None]
    units = unit_index(documents)
    assert units.max() + 1 == 31 and units[-1] == 30  # 30 documents, the loose sentence alone
    counts = group(sentence_counts(*_noisy_split(91)), units)
    assert counts.unit == "document" and counts.units == 31
    assert counts.values.sum() == sentence_counts(*_noisy_split(91)).values.sum()


def test_report_shows_intervals_and_summary_keys(tmp_path):
    gold, pred = _noisy_split(50)
    scores = entity_scores(gold, pred, reference_types=["geo", "per"])
    write_test_outputs(scores, gold, pred, tmp_path, "fixture", resamples=200)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert len(saved["f1_ci"]["micro"]) == 2 and saved["bootstrap"]["resamples"] == 200
    assert set(saved["f1_ci"]) == {"micro", "macro", "reference", "per_type"}
    markdown = (tmp_path / "report.md").read_text()
    assert markdown == to_markdown(scores, "fixture")
    assert "f1 95% CI" in markdown and "200 resamples" in markdown
    low, high = scores["f1_ci"]["micro"]
    assert f"| micro avg | 0.9479 | 0.9100 | 0.9286 | {low:.4f}–{high:.4f} | 100 |" in markdown
    keys = interval_summary(scores)
    assert keys["test/f1_ci_low"] == low and keys["test/f1_ci_high"] == high
    assert {"test/f1_reference_types_ci_low", "test/per_type/geo/f1_ci_high"} <= set(keys)


def test_thousand_resamples_of_a_gmb_sized_split_are_fast():
    """GMB's test split: ~4,800 sentences, 17 types. Prints the time; asserts no speed."""
    rng = np.random.default_rng(0)
    gold = rng.poisson(0.25, size=(4800, 17))
    pred = gold + rng.poisson(0.03, size=gold.shape)
    hits = np.minimum(gold, pred) - rng.binomial(np.minimum(gold, pred), 0.1)
    counts = Counts(np.stack([hits, pred, gold], axis=-1), [f"t{i}" for i in range(17)])
    started = time.perf_counter()
    intervals = f1_intervals(counts, resamples=1000, seed=0)
    seconds = time.perf_counter() - started
    print(f"\n1,000 bootstrap resamples of 4,800 sentences x 17 types: {seconds:.3f} s")
    low, high = intervals["micro"]
    assert 0 < low < high < 1

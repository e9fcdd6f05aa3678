"""Error analysis: SemEval-2013 categories on known cases, errors.html, and evaluate writing both
(with F1 intervals and predictions.conll that nerlit compare reads against the checkpoint)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from nerlit.commands.compare import load_run
from nerlit.commands.evaluate import evaluate
from nerlit.commands.train import train
from nerlit.config import CONFIG_DIR
from nerlit.data.types import Sentence
from nerlit.evaluation.bootstrap import compare_predictions
from nerlit.evaluation.error_analysis import analyse_errors, to_markdown
from nerlit.evaluation.error_page import write_error_page
from nerlit.evaluation.metrics import entity_scores
from tests.conftest import compose_train, make_sentences, tiny_overrides, write_gmb_csv

pytest.importorskip("nervaluate")

GOLD = [
    ["B-per", "I-per", "O", "B-geo", "O", "B-org"],  # per right, geo as org, org missed
    ["B-geo", "O", "O"],  # geo right, a spurious tim
    ["B-org", "I-org", "I-org", "O"],  # org one word short
    ["O", "O"],  # a spurious per
    ["B-per", "I-per", "O"],  # per cut and typed geo
    ["B-tim", "O"],  # all right
]
PRED = [
    ["B-per", "I-per", "O", "B-org", "O", "O"],
    ["B-geo", "B-tim", "O"],
    ["B-org", "I-org", "O", "O"],
    ["B-per", "O"],
    ["B-geo", "O", "O"],
    ["B-tim", "O"],
]


def _categories(analysis) -> list[tuple[list[str], list[str]]]:
    return [
        ([g.category for g in s.gold], [p.category for p in s.pred]) for s in analysis.sentences
    ]


def test_each_entity_gets_its_semeval_category():
    analysis = analyse_errors(GOLD, PRED)
    assert _categories(analysis) == [
        (["correct", "wrong", "missed"], ["correct", "wrong_type"]),
        (["correct"], ["correct", "spurious"]),
        (["wrong"], ["wrong_boundary"]),
        ([], ["spurious"]),
        (["wrong"], ["wrong_both"]),
        (["correct"], ["correct"]),
    ]
    assert analysis.sentences[0].pred[1].gold_type == "geo"
    assert analysis.totals() == {
        "correct": 3,
        "missed": 1,
        "spurious": 2,
        "wrong_type": 1,
        "wrong_boundary": 1,
        "wrong_both": 1,
    }
    # per gold type: geo typed as org counts under geo, the spurious ones under their own type
    assert analysis.counts["geo"]["wrong_type"] == 1 and analysis.counts["org"]["missed"] == 1
    assert analysis.counts["per"]["wrong_both"] == 1 and analysis.counts["tim"]["spurious"] == 1


def test_strict_row_is_the_reports_micro_f1_and_partial_is_more_lenient():
    analysis = analyse_errors(GOLD, PRED).summary()
    overall = analysis["overall"]
    assert overall["strict"]["f1"] == pytest.approx(entity_scores(GOLD, PRED)["micro"]["f1"], 1e-5)
    assert overall["strict"]["f1"] < overall["exact"]["f1"] <= overall["partial"]["f1"]
    # SemEval counts: exact sees the geo/org span as correct, partial the org one word short
    assert overall["exact"]["correct"] == 4 and overall["partial"]["partial"] == 2
    assert analysis["sentences_with_errors"] == 5
    markdown = to_markdown(analysis)
    assert "| strict | 3 | 3 | 0 | 1 | 2 |" in markdown
    assert "| total | 3 | 1 | 2 | 1 | 1 | 1 |" in markdown


def test_no_entities_at_all():
    analysis = analyse_errors([["O", "O"]], [["O", "O"]])
    assert analysis.totals()["correct"] == 0 and analysis.overall["strict"]["f1"] == 0


def test_page_is_sorted_by_errors_and_filterable(tmp_path: Path):
    sentences = [
        Sentence(tuple(f"w{i}" for i in range(len(g))), tuple(g), f"s{k}")
        for k, g in enumerate(GOLD)
    ]
    html = write_error_page(sentences, analyse_errors(GOLD, PRED), tmp_path / "e.html", "t")
    text = html.read_text()
    headings = re.findall(r'<span class="n">\d+</span>(s\d)', text)
    assert headings[0] == "s0" and headings[-1] == "s5"  # 2 errors first, none last
    assert '<select id="type">' in text and '<option value="wrong_type">' in text
    assert 'data-e="missed:org wrong_type:geo"' in text
    assert "onclick=\"pick('geo','wrong_type')\"" in text
    assert "<script" in text and "http" not in text.split("<body>")[1]  # nothing external


def test_evaluate_writes_error_analysis_intervals_and_predictions_compare_reads(tmp_path: Path):
    """A tiny run; evaluate on a CoNLL file with documents; compare its predictions with the
    checkpoint tagging the same file: the same predictions, so no difference at all."""
    threads = torch.get_num_threads()
    corpus = tmp_path / "gmb.csv"
    write_gmb_csv(corpus, make_sentences(120))
    overrides = [*tiny_overrides(corpus), "trainer.precision=32", "threads=1", "logger=none"]
    try:
        summary = train(compose_train(overrides, tmp_path / "run"))
    finally:
        torch.set_num_threads(threads)
    sentences = make_sentences(60, seed=9)
    test_file = tmp_path / "docs.conll"
    lines = []
    for i, (words, tags) in enumerate(sentences):
        if i % 2 == 0:
            lines += ["-DOCSTART- -X- O O", ""]
        lines += [f"{w.replace('with', 'beside')} NN O {t}" for w, t in zip(words, tags)] + [""]
    test_file.write_text("\n".join(lines) + "\n")
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "evaluate.yaml",
            overrides=[
                f"ckpt_path={summary['best_checkpoint']}",
                f"data.test_file={test_file}",
                "plot=false",
                "precision=fp32",
            ],
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "eval")
    scores = evaluate(cfg)
    out = tmp_path / "eval"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["bootstrap"]["unit"] == "document" and metrics["bootstrap"]["units"] == 30
    low, high = metrics["f1_ci"]["micro"]
    assert low <= scores["micro"]["f1"] <= high
    strict = metrics["error_analysis"]["overall"]["strict"]["f1"]
    assert strict == pytest.approx(scores["micro"]["f1"], abs=1e-5)
    assert "Partial-match scores" in (out / "report.md").read_text()
    assert (out / "errors.html").read_text().count('class="s"') == 60
    predictions = (out / "predictions.conll").read_text()
    assert predictions.count("-DOCSTART-") == 30

    rows, how = compare_predictions(
        load_run(out), load_run(summary["best_checkpoint"], str(test_file))
    )
    assert how["unit"] == "document"
    assert all(r.difference == 0 and r.p_value == 1.0 for r in rows)
    assert rows[0].f1_a == pytest.approx(scores["micro"]["f1"])

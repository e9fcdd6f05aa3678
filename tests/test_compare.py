"""nerlit compare: known answers on prediction files, refusals, the file format round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from nerlit.commands.compare import compare_runs, load_run, positional_as_keys
from nerlit.config import CONFIG_DIR
from nerlit.data.types import Sentence
from nerlit.errors import DataError, NerlitError, OptionError
from nerlit.evaluation.bootstrap import compare_predictions, paired_test, sentence_counts
from nerlit.evaluation.metrics import entity_scores
from nerlit.evaluation.predictions import read_predictions, write_predictions
from tests.conftest import REPO_ROOT, make_sentences


def _sentences(n: int, documents: bool = False) -> list[Sentence]:
    return [
        Sentence(tuple(w), tuple(t), f"s{i}", f"doc{i // 4}" if documents else None)
        for i, (w, t) in enumerate(make_sentences(n, seed=1))
    ]


def _damaged(sentences: list[Sentence], share: float, seed: int) -> list[list[str]]:
    """Gold tags with the place of about ``share`` of the sentences missed."""
    rng = np.random.default_rng(seed)
    out = []
    for sentence in sentences:
        tags = list(sentence.tags)
        if rng.random() < share:
            tags = ["O" if t.endswith("geo") else t for t in tags]
        out.append(tags)
    return out


def _write(path: Path, sentences: list[Sentence], pred: list[list[str]]) -> Path:
    assert write_predictions(sentences, pred, path)
    return path


def test_round_trip_keeps_words_tags_and_documents(tmp_path: Path):
    sentences = _sentences(10, documents=True)
    pred = _damaged(sentences, 0.5, 0)
    read = read_predictions(_write(tmp_path / "p.conll", sentences, pred))
    assert [s.words for s in read.sentences] == [s.words for s in sentences]
    assert read.gold == [list(s.tags) for s in sentences] and read.pred == pred
    # documents come back as markers: same grouping, new names
    assert len(set(read.documents)) == 3
    assert [read.documents.index(d) for d in read.documents] == [
        [s.document for s in sentences].index(s.document) for s in sentences
    ]
    text = (tmp_path / "p.conll").read_text()
    assert text.startswith("-DOCSTART- O O\n\n") and text.count("-DOCSTART-") == 3


def test_partial_predictions_are_not_written(tmp_path: Path):
    sentences = _sentences(4)
    assert not write_predictions(sentences, [list(s.tags) for s in sentences[:2]], tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_identical_runs_differ_by_zero_with_p_one(tmp_path: Path):
    sentences = _sentences(60)
    pred = _damaged(sentences, 0.3, 0)
    a = _write(tmp_path / "a.conll", sentences, pred)
    b = _write(tmp_path / "b.conll", sentences, pred)
    rows, how = compare_predictions(load_run(a), load_run(b), resamples=500)
    assert how["unit"] == "sentence" and how["units"] == 60
    for row in rows:
        assert row.difference == 0 and row.interval == [0.0, 0.0] and row.p_value == 1.0


def test_a_clearly_better_run_gets_a_small_p_and_a_positive_interval(tmp_path: Path):
    sentences = _sentences(200)
    worse, better = _damaged(sentences, 0.4, 0), _damaged(sentences, 0.05, 1)
    a = load_run(_write(tmp_path / "a.conll", sentences, worse))
    b = load_run(_write(tmp_path / "b.conll", sentences, better))
    rows, _ = compare_predictions(a, b, resamples=2000, seed=3)
    micro = {row.name: row for row in rows}["micro"]
    gold = [list(s.tags) for s in sentences]
    assert micro.f1_a == pytest.approx(entity_scores(gold, worse)["micro"]["f1"])
    assert micro.f1_b == pytest.approx(entity_scores(gold, better)["micro"]["f1"])
    assert micro.difference > 0 and micro.interval[0] > 0
    assert micro.p_value < 0.01
    geo = {row.name: row for row in rows}["geo"]
    assert geo.p_value < 0.01
    per = {row.name: row for row in rows}["per"]  # untouched: no difference at all
    assert per.difference == 0 and per.p_value == 1.0
    # the other way round: the same p, the interval mirrored
    back = {r.name: r for r in compare_predictions(b, a, resamples=2000, seed=3)[0]}["micro"]
    assert back.difference == pytest.approx(-micro.difference)


def test_a_tiny_difference_is_not_significant(tmp_path: Path):
    sentences = _sentences(100)
    first = _damaged(sentences, 0.3, 0)
    second = [list(t) for t in first]
    fixed = next(i for i, s in enumerate(sentences) if list(s.tags) != first[i])
    second[fixed] = list(sentences[fixed].tags)  # one sentence better
    counts = [sentence_counts([list(s.tags) for s in sentences], p) for p in (first, second)]
    micro = paired_test(*counts, resamples=2000)[0]
    assert micro.difference > 0 and micro.p_value > 0.3 and micro.interval[0] <= 0


def test_different_sentences_are_refused_naming_the_first_difference(tmp_path: Path):
    sentences = _sentences(10)
    other = list(sentences)
    words = list(other[6].words)
    words[2] = "Lisbon"
    other[6] = Sentence(tuple(words), other[6].tags, "s6")
    a = _write(tmp_path / "a.conll", sentences, [list(s.tags) for s in sentences])
    b = _write(tmp_path / "b.conll", other, [list(s.tags) for s in other])
    with pytest.raises(DataError, match=r"sentence 7 .* differs at word 3: '\w+' in A, 'Lisbon'"):
        compare_predictions(load_run(a), load_run(b))
    shorter = _write(tmp_path / "c.conll", sentences[:8], [list(s.tags) for s in sentences[:8]])
    with pytest.raises(DataError, match="A has 10, B 8"):
        compare_predictions(load_run(a), load_run(shorter))

    result = subprocess.run(
        [sys.executable, "-m", "nerlit.compare", str(a), str(b)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("nerlit: A and B did not score the same sentences")


def test_different_gold_is_refused(tmp_path: Path):
    sentences = _sentences(5)
    relabelled = [Sentence(s.words, tuple("O" for _ in s.tags), s.id) for s in sentences]
    a = _write(tmp_path / "a.conll", sentences, [list(s.tags) for s in sentences])
    b = _write(tmp_path / "b.conll", relabelled, [list(s.tags) for s in sentences])
    with pytest.raises(DataError, match="different gold tags: sentence 1 .* B-per in A, O in B"):
        compare_predictions(load_run(a), load_run(b))


def test_run_directories_and_the_cli(tmp_path: Path, capsys):
    sentences = _sentences(80, documents=True)
    for name, share, seed in (("a", 0.4, 0), ("b", 0.1, 1)):
        folder = tmp_path / name
        folder.mkdir()
        _write(folder / "predictions.conll", sentences, _damaged(sentences, share, seed))
        metrics = {"mode": "strict", "reference": {"types": ["geo", "per"]}}
        (folder / "metrics.json").write_text(json.dumps(metrics))
    out = tmp_path / "comparison.json"
    rows = run([str(tmp_path / "a"), str(tmp_path / "b"), "resamples=500", f"json={out}"])
    printed = capsys.readouterr().out
    assert "micro (geo, per)" in printed and "B vs A" in printed
    saved = json.loads(out.read_text())
    assert saved["unit"] == "document" and saved["units"] == 20
    assert [r["name"] for r in saved["rows"]][:3] == ["micro", "macro", "micro (geo, per)"]
    assert len(rows) == 3 + 4
    with pytest.raises(NerlitError, match="has no predictions.conll"):
        run([f"a={tmp_path}", f"b={tmp_path / 'b'}"])


def test_documents_are_resampled_when_both_runs_mark_them(tmp_path: Path):
    sentences = _sentences(100, documents=True)  # 25 documents
    a = load_run(_write(tmp_path / "a.conll", sentences, _damaged(sentences, 0.4, 0)))
    b = load_run(_write(tmp_path / "b.conll", sentences, _damaged(sentences, 0.1, 1)))
    _, how = compare_predictions(a, b, resamples=200)
    assert how["unit"] == "document" and how["units"] == 25


def run(args: list[str]):
    """``nerlit compare ARGS`` in this process: the verb's config composed as the CLI does."""
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("compare.yaml", overrides=positional_as_keys(args))
    return compare_runs(cfg)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nerlit.compare", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(result: subprocess.CompletedProcess, start: str) -> None:
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith(f"nerlit: {start}"), result.stderr


@pytest.mark.parametrize("level", ["1.5", "0", "1", "-0.2", "nan"])
def test_a_confidence_outside_zero_to_one_is_one_line(tmp_path: Path, level: str):
    sentences = _sentences(5)
    a = _write(tmp_path / "a.conll", sentences, [list(s.tags) for s in sentences])
    with pytest.raises(OptionError, match="between 0 and 1"):
        compare_predictions(load_run(a), load_run(a), confidence=float(level))
    if level in ("1.5", "nan"):  # the command's line: a subprocess each, the others' rule is one
        _one_line(_cli(str(a), str(a), f"confidence={level}"), f"confidence={level}:")


def test_a_json_folder_is_refused_before_computing(tmp_path: Path, monkeypatch):
    sentences = _sentences(5)
    a = _write(tmp_path / "a.conll", sentences, [list(s.tags) for s in sentences])
    (tmp_path / "out").mkdir()

    def never(*args, **kwargs):
        raise AssertionError("computed before the output path was checked")

    monkeypatch.setattr("nerlit.commands.compare.load_run", never)
    with pytest.raises(NerlitError, match=r"json=\S*out is a folder"):
        run([str(a), str(a), f"json={tmp_path / 'out'}"])
    with pytest.raises(NerlitError, match="cannot write there"):
        run([str(a), str(a), f"json={a / 'x.json'}"])


def test_two_empty_prediction_files_are_nothing_to_compare(tmp_path: Path):
    a, b = tmp_path / "a.conll", tmp_path / "b.conll"
    a.write_text(""), b.write_text("\n")
    with pytest.raises(DataError, match="nothing to compare: .*a.conll and .*b.conll"):
        compare_predictions(load_run(a), load_run(b))
    _one_line(_cli(str(a), str(b), "resamples=10"), "nothing to compare")


def _sweep(folder: Path, jobs: list[tuple[str, float, float]]) -> Path:
    """A -m sweep's folder as nerlit train writes it: job folders with their overrides, summary,
    test predictions and CSV log."""
    sentences = _sentences(60, documents=True)
    for number, (override, dev_f1, damage) in enumerate(jobs):
        job = folder / str(number)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- {override}\n- seed=1\n")
        (job / "summary.json").write_text(json.dumps({"best_val_f1": dev_f1, "test_f1": 0.5}))
        _write(job / "predictions.conll", sentences, _damaged(sentences, damage, number))
        (job / "csv").mkdir()
        (job / "csv" / "metrics.csv").write_text(
            f"epoch,step,val/f1\n0,9,{dev_f1 - 0.1}\n1,19,{dev_f1}\n"
        )
    return folder


def test_a_sweep_compares_every_run_with_the_best_by_dev_f1(tmp_path: Path, capsys):
    folder = _sweep(
        tmp_path / "sweep",
        [
            ("optimizer.lr=1e-5", 0.70, 0.5),
            ("optimizer.lr=5e-5", 0.90, 0.05),
            ("optimizer.lr=1e-4", 0.85, 0.1),
        ],
    )
    out = tmp_path / "sweep.json"
    records = run([str(folder), "resamples=300", f"json={out}"])
    printed = capsys.readouterr().out
    # the best by dev (job 1) is A; the others follow in dev order, each with Holm's p
    assert [r["job"] for r in records] == ["2", "0"]
    assert [r["overrides"] for r in records] == ["optimizer.lr=1e-4", "optimizer.lr=1e-5"]
    assert all(r["difference"] < 0 for r in records)
    assert all(r["p_holm"] >= r["p_value"] for r in records)
    assert "best: job 1 (optimizer.lr=5e-5)" in printed.replace("\n", " ")
    assert "Holm" in printed and "by chance" in printed
    assert json.loads(out.read_text())["best"] == "1"
    assert (folder / "dev_f1.png").stat().st_size > 1000  # looked at: three curves, a legend


def test_holm_adjustment_matches_the_textbook_example():
    from nerlit.evaluation.bootstrap import holm_adjusted

    # Holm (1979) step-down on four p-values: sorted 0.01, 0.02, 0.03, 0.04 times 4, 3, 2, 1
    assert holm_adjusted([0.04, 0.01, 0.03, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])


@pytest.mark.slow
def test_a_sweep_with_one_finished_run_is_one_line(tmp_path: Path):
    folder = _sweep(tmp_path / "sweep", [("seed=1", 0.8, 0.1)])
    _one_line(_cli(f"sweep={folder}"), f"sweep={folder}: 1 finished run(s)")
    _one_line(_cli(f"a={folder}/0"), "name two runs")

"""python -m nerlit.evaluate: the training data configs, report files, a confusion matrix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from nerlit import Tagger
from nerlit.config import CONFIG_DIR
from nerlit.evaluate import evaluate, read_split
from nerlit.evaluation.confusion import NONE, entity_confusion
from nerlit.evaluation.metrics import entity_scores
from tests.conftest import REPO_ROOT, make_sentences, write_gmb_csv
from tests.test_inference import tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


def compose_evaluate(overrides: list[str], output_dir: Path):
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("evaluate.yaml", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def test_confusion_counts_types_missed_and_spurious():
    gold = [["B-per", "I-per", "O", "B-geo", "O", "B-org"], ["B-geo", "O"]]
    pred = [["B-per", "I-per", "O", "B-org", "O", "O"], ["B-geo", "B-tim"]]
    confusion = entity_confusion(gold, pred)
    assert confusion["types"] == ["geo", "org", "per", "tim"]
    cell = dict(
        ((r, c), n)
        for i, r in enumerate(confusion["rows"])
        for j, c in enumerate(confusion["columns"])
        if (n := confusion["counts"][i][j])
    )
    assert cell == {
        ("per", "per"): 1,
        ("geo", "org"): 1,
        ("geo", "geo"): 1,
        ("org", NONE): 1,
        (NONE, "tim"): 1,
    }


def test_confusion_boundary_error_is_one_missed_and_one_spurious():
    confusion = entity_confusion([["B-per", "I-per"]], [["B-per", "O"]])
    per = confusion["rows"].index("per")
    assert confusion["counts"][per] == [0, 1]  # per -> (none): missed
    assert confusion["counts"][-1] == [1, 0]  # (none) -> per: spurious


def test_evaluate_writes_the_report_and_agrees_with_tagger(ckpt: Path, tmp_path: Path):
    csv = write_gmb_csv(tmp_path / "gmb.csv", make_sentences(60))
    out = tmp_path / "eval"
    cfg = compose_evaluate([f"ckpt_path={ckpt}", f"data.train_file={csv}"], out)
    scores = evaluate(cfg)
    for name in (
        "metrics.json",
        "report.md",
        "confusion.json",
        "confusion.png",
        "predictions.conll",
    ):
        assert (out / name).is_file(), name
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "metrics.json").read_text())["micro"] == scores["micro"]
    assert "micro avg (geo, gpe, org, per, tim)" in (out / "report.md").read_text()

    # the same split as training (the seeded 80/10/10 of the data config), tagged by Tagger
    _, sentences = read_split(cfg.data, "test")
    assert len(sentences) == 6
    pred = Tagger.load(ckpt).predict_tags([s.words for s in sentences])
    expected = entity_scores([list(s.tags) for s in sentences], pred, "strict")
    assert scores["micro"] == expected["micro"]

    # rows of the confusion matrix sum to gold support, its diagonal holds the hits
    confusion = json.loads((out / "confusion.json").read_text())
    for i, kind in enumerate(confusion["types"]):
        row = scores["per_type"][kind]
        assert sum(confusion["counts"][i]) == row["support"]
        assert confusion["counts"][i][i] == round(row["recall"] * row["support"])


def test_cli_missing_checkpoint_is_one_clear_line(tmp_path: Path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nerlit.evaluate",
            f"ckpt_path={tmp_path}/gone.ckpt",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "gone.ckpt: no such checkpoint file or model folder" in result.stderr

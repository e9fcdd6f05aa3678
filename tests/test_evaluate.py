"""python -m nerlit.evaluate: what it scores (the run's own split, one file, a data config),
the refusal of sentences the model trained on, report files, a confusion matrix; val/f1_best."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from transformers import BertConfig

from nerlit import Tagger
from nerlit.commands.evaluate import evaluate
from nerlit.commands.train import train
from nerlit.config import CONFIG_DIR
from nerlit.data.corpus import infer_format
from nerlit.data.datamodule import fingerprint_set
from nerlit.data.held_out import TrainOverlapError, read_split
from nerlit.errors import OptionError
from nerlit.evaluation.confusion import NONE, entity_confusion
from nerlit.evaluation.metrics import entity_scores
from nerlit.inference.hf_export import export_huggingface
from nerlit.models.checkpoint import read_data_record
from nerlit.models.module import NerModule
from tests.conftest import (
    REPO_ROOT,
    compose_train,
    make_sentences,
    tiny_overrides,
    write_conll,
    write_gmb_csv,
)

N_SENTENCES = 120  # split 96 / 12 / 12 by the seeded 80/10/10


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> SimpleNamespace:
    """One tiny training that moves the model (F1 well above 0) and tests it in fp32.

    It runs in its own directory with a relative train file, as a user would, so the checkpoint
    must record the file's absolute path for evaluate to find it from anywhere else.
    """
    directory = tmp_path_factory.mktemp("evaluate-run")
    write_gmb_csv(directory / "gmb.csv", make_sentences(N_SENTENCES))
    overrides = [
        *tiny_overrides(Path("gmb.csv")),
        "trainer.max_epochs=3",
        "trainer.precision=32",
        "optimizer.lr=3e-3",
    ]
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        summary = train(compose_train(overrides, directory / "run"))
    finally:
        os.chdir(cwd)
    return SimpleNamespace(
        dir=directory / "run",
        csv=directory / "gmb.csv",
        ckpt=Path(summary["best_checkpoint"]),
        summary=summary,
    )


@pytest.fixture(scope="module")
def ckpt(run: SimpleNamespace) -> Path:
    return run.ckpt


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
    # a copy of the run's corpus elsewhere, through the preset: the run's own split again
    gmb = write_gmb_csv(tmp_path / "gmb.csv", make_sentences(N_SENTENCES))
    out = tmp_path / "eval"
    cfg = compose_evaluate([f"ckpt_path={ckpt}", "data=gmb", f"data.train_file={gmb}"], out)
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
    assert len(sentences) == 12
    assert scores["train_overlap"] == 0 and scores["data"]["source"] == "config"
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


def _unseen(sentences: list[tuple[list[str], list[str]]]) -> list[tuple[list[str], list[str]]]:
    """The fixture's sentences with 'with' replaced, so no text is one the model trained on."""
    return [
        ([("alongside" if w == "with" else w) for w in words], tags) for words, tags in sentences
    ]


def test_standalone_conll_file_without_a_train_file_is_scored(ckpt: Path, tmp_path: Path):
    gold = _unseen(make_sentences(20, seed=3))
    # IOB1 on disk: the scheme is detected from the file itself, the format from its name
    test_file = write_conll(tmp_path / "their.txt", gold, iob1=True)
    out = tmp_path / "eval"
    scores = evaluate(compose_evaluate([f"ckpt_path={ckpt}", f"data.test_file={test_file}"], out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["micro"] == scores["micro"] and metrics["split"] == "test"
    assert metrics["data"]["source"] == "file" and metrics["data"]["sentences"] == 20
    assert metrics["data"]["format"] == "conll" and metrics["data"]["scheme"] == "iob1"
    assert metrics["train_overlap"] == 0
    # the IOB2 gold of what was written, tagged by Tagger: the same numbers
    pred = Tagger.load(ckpt).predict_tags([words for words, _ in gold])
    assert scores["micro"] == entity_scores([tags for _, tags in gold], pred, "strict")["micro"]
    assert scores["micro"]["support"] == 80

    # a val file alone is the val split
    val = evaluate(compose_evaluate([f"ckpt_path={ckpt}", f"data.val_file={test_file}"], out))
    assert val["split"] == "val" and val["micro"] == scores["micro"]


def test_formats_are_inferred_from_file_names():
    assert infer_format("a/b.jsonl") == "jsonl"
    assert infer_format("ner_dataset.csv.gz") == infer_format("x.CSV") == "gmb"
    assert infer_format("test.txt") == infer_format("eng.testb") == "conll"


def test_no_data_arguments_score_the_recorded_test_split_as_training_did(
    run: SimpleNamespace, tmp_path: Path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # not the run's directory: its relative train file was recorded
    out = tmp_path / "eval"
    scores = evaluate(compose_evaluate([f"ckpt_path={run.ckpt}", "precision=fp32"], out))
    assert run.summary["test_f1"] > 0.2  # a model that tags something, so equality means much
    assert scores["micro"]["f1"] == pytest.approx(run.summary["test_f1"], abs=1e-12)
    split = json.loads((run.dir / "split.json").read_text())
    assert scores["data"]["source"] == "checkpoint"
    assert scores["data"]["train_file"] == str(run.csv)
    assert scores["data"]["sentences"] == len(split["test"])
    assert scores["train_overlap"] == 0


def test_a_split_the_model_trained_on_is_refused_unless_allowed(
    run: SimpleNamespace, tmp_path: Path
):
    record = read_data_record(run.ckpt)
    train_set = fingerprint_set(record["fingerprints"]["train"])
    # the fixture repeats texts across a random split, as GMB does: the run's own test split
    # (scored above with no refusal) holds sentences whose text is also in train
    assert train_set & fingerprint_set(record["fingerprints"]["test"])

    base = [f"ckpt_path={run.ckpt}", "data=gmb", f"data.train_file={run.csv}"]
    with pytest.raises(TrainOverlapError) as refused:
        evaluate(compose_evaluate([*base, "data.split_seed=7"], tmp_path / "refused"))
    message = str(refused.value)
    found = re.search(
        r"the model trained on (\d+) of the 12 test sentences of gmb \(the first: '", message
    )
    assert found and int(found.group(1)) > 0, message
    assert "allow_train_overlap=true" in message and "\n" not in message
    assert not (tmp_path / "refused" / "metrics.json").exists()

    out = tmp_path / "allowed"
    evaluate(compose_evaluate([*base, "data.split_seed=7", "allow_train_overlap=true"], out))
    assert json.loads((out / "metrics.json").read_text())["train_overlap"] == int(found.group(1))


def test_split_train_is_refused(run: SimpleNamespace, tmp_path: Path):
    cfg = compose_evaluate([f"ckpt_path={run.ckpt}", "split=train"], tmp_path)
    with pytest.raises(TrainOverlapError, match="trained on 96 of the 96 train sentences"):
        evaluate(cfg)


def test_exported_folder_without_data_arguments_is_one_clear_line(ckpt: Path, tmp_path: Path):
    folder = export_huggingface(ckpt, tmp_path / "model")
    with pytest.raises(OptionError, match="exported model folder"):
        evaluate(compose_evaluate([f"ckpt_path={folder}"], tmp_path / "eval"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nerlit.evaluate",
            f"ckpt_path={folder}",
            f"hydra.run.dir={tmp_path / 'cli'}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"nerlit: {folder} is an exported model folder with no record"), last
    assert "data.test_file=FILE" in last and "data=PRESET" in last


def _tiny_module() -> NerModule:
    config = BertConfig(
        vocab_size=50,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
    )
    return NerModule(["O", "B-per", "I-per"], encoder_config=config.to_dict())


def _validate(module: NerModule, f1: float, sanity: bool = False) -> dict[str, float]:
    """One validation epoch end whose micro F1 is ``f1``; returns what was logged."""
    logged: dict[str, float] = {}
    module.trainer = SimpleNamespace(sanity_checking=sanity)
    module._score = lambda split: {"micro": {"f1": f1, "precision": f1, "recall": f1}}
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, float(value))
    module.on_validation_epoch_end()
    return logged


def test_val_f1_best_is_the_running_maximum_and_survives_a_checkpoint():
    module = _tiny_module()
    assert "val/f1_best" not in _validate(module, 0.9, sanity=True)  # no epoch's result
    best = [_validate(module, f1)["val/f1_best"] for f1 in (0.25, 0.5, 0.375)]
    assert best == [0.25, 0.5, 0.5]

    state = module.state_dict()
    assert float(state["val_f1_best.max_value"]) == 0.5
    restored = _tiny_module()
    checkpoint = {"state_dict": state, "hyper_parameters": dict(module.hparams)}
    restored.on_load_checkpoint(checkpoint)
    restored.load_state_dict(checkpoint["state_dict"])
    assert _validate(restored, 0.125)["val/f1_best"] == 0.5

    # a checkpoint saved before val/f1_best was a metric still loads, with no best yet
    older = {
        "state_dict": {k: v for k, v in state.items() if not k.startswith("val_f1_best")},
        "hyper_parameters": dict(module.hparams),
    }
    fresh = _tiny_module()
    fresh.on_load_checkpoint(older)
    fresh.load_state_dict(older["state_dict"])
    assert _validate(fresh, 0.125)["val/f1_best"] == 0.125


def test_val_f1_best_of_a_run_is_the_maximum_of_its_epochs(run: SimpleNamespace):
    with open(run.dir / "csv" / "metrics.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["val/f1"]]
    f1 = [float(r["val/f1"]) for r in rows]
    assert len(f1) == 3
    assert [float(r["val/f1_best"]) for r in rows] == [max(f1[: i + 1]) for i in range(3)]
    assert run.summary["best_val_f1"] == pytest.approx(max(f1))
    last = run.dir / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)["state_dict"]
    assert float(state["val_f1_best.max_value"]) == max(f1)
    restored = NerModule.load_from_checkpoint(last, weights_only=True)
    assert float(restored.val_f1_best.compute()) == max(f1)

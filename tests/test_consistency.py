"""One network, one decoder: training's test, `nerlit evaluate` and `Tagger.predict_tags` give the
same predictions, hence the same F1 to the last digit, for every head, decoder and input
option, and every predicted sequence is valid IOB2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import open_dict

from nerlit import Tagger
from nerlit.commands.evaluate import evaluate
from nerlit.commands.train import train
from nerlit.data.corpus import load_corpus
from nerlit.data.schemes import repair_iob2
from nerlit.evaluation.metrics import entity_scores
from tests.conftest import compose_train, make_sentences, write_conll
from tests.test_evaluate import compose_evaluate

VARIANTS = {
    "linear-argmax": ["model.decode=argmax"],
    "linear-constrained": ["model.decode=constrained"],
    "crf": ["model.head=crf"],
    "casing": ["model.case_features=true"],
    "label-all-subwords": ["data.label_all_subwords=true", "model.head=crf"],
    "document-context": ["data.context=12"],
    # 12-subword windows: most test sentences are longer and are windowed with a 4-subword stride
    "long-sentences": ["data.max_length=12", "data.stride=4"],
}


def _corpus(directory: Path) -> dict[str, Path]:
    """CoNLL files with several documents each (context needs them)."""
    files = {}
    for split, n, seed in (("train", 64, 0), ("val", 16, 1), ("test", 24, 2)):
        path = directory / f"{split}.conll"
        sentences = make_sentences(n, seed)
        chunks = [write_conll(directory / f"part{i}", sentences[i : i + 4]) for i in range(0, n, 4)]
        path.write_text("".join(c.read_text() for c in chunks))
        files[split] = path
    return files


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return _corpus(tmp_path_factory.mktemp("consistency"))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_trainer_test_evaluate_and_tagger_agree(variant: str, corpus, tmp_path: Path):
    overrides = [
        "model=tiny",
        "data=conll",
        f"data.train_file={corpus['train']}",
        f"data.val_file={corpus['val']}",
        f"data.test_file={corpus['test']}",
        "data.batch_size=8",
        "data.eval_batch_size=16",
        "trainer.accelerator=cpu",
        "trainer.precision=32",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        "optimizer.lr=3e-3",
        "logger=none",
        *VARIANTS[variant],
    ]
    cfg = compose_train(overrides, tmp_path / "run")
    with open_dict(cfg):
        cfg.callbacks.pop("progress_bar", None)
    summary = train(cfg)
    checkpoint = summary["best_checkpoint"]
    trained = json.loads((tmp_path / "run" / "metrics.json").read_text())["micro"]["f1"]

    evaluated = evaluate(
        compose_evaluate([f"ckpt_path={checkpoint}", "precision=fp32"], tmp_path / "evaluate")
    )["micro"]["f1"]

    tagger = Tagger.load(checkpoint, precision="fp32")
    corpus_, _ = load_corpus(
        corpus["train"], corpus["val"], corpus["test"], format="conll", scheme="iob2"
    )
    sentences = corpus_.test
    tags = tagger.predict_tags([s.words for s in sentences], [s.document for s in sentences])
    tagged = entity_scores([list(s.tags) for s in sentences], tags, "strict")["micro"]["f1"]

    assert trained == evaluated == tagged == summary["test_f1"]
    assert any(any(t != "O" for t in row) for row in tags), "an all-O model proves little"
    for row in tags:
        assert repair_iob2(row)[1] == 0, row  # valid IOB2: nothing to repair
    if variant == "long-sentences":
        run = json.loads((tmp_path / "run" / "split.json").read_text())
        assert run["report"]["windowed_sentences"]["test"] > 0

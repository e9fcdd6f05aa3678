"""nerlit audit: cleanlab's ranking puts flipped labels first, folds keep documents whole, and a
tiny model's k-fold run ranks a fixture corpus's deliberately flipped sentences near the top."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from nerlit import extras
from nerlit.commands.audit import audit
from nerlit.config import CONFIG_DIR
from nerlit.data.folds import assign_folds, document_units, split_fold
from nerlit.data.types import Sentence
from nerlit.errors import ConfigError, MissingExtraError
from nerlit.evaluation.label_noise import (
    entity_classes,
    merge_probabilities,
    rank_label_issues,
    write_audit_csv,
    write_audit_page,
)
from tests.conftest import make_sentences, write_conll

pytest.importorskip("cleanlab")

_SWAP = {"per": "geo", "geo": "per", "org": "per", "tim": "geo"}


def _flip(tags: list[str], kind: str) -> list[str]:
    """The entity of type ``kind`` relabelled with another type (a wrong-type annotation)."""
    return [t[:2] + _SWAP[kind] if t.endswith(f"-{kind}") else t for t in tags]


def _corpus(n: int, flipped: set[int]) -> list[tuple[list[str], list[str]]]:
    sentences = make_sentences(n, seed=5)
    return [(w, _flip(t, "geo") if i in flipped else t) for i, (w, t) in enumerate(sentences)]


def test_merge_probabilities_sums_prefixes_per_type():
    labels = ["O", "B-geo", "I-geo", "B-per", "I-per"]
    probs = np.array([[0.1, 0.3, 0.2, 0.4, 0.0]])
    merged = merge_probabilities(probs, labels, ["O", "geo", "org", "per"])
    assert merged[0].tolist() == pytest.approx([0.1, 0.5, 0.0, 0.4])
    assert entity_classes([["B-per", "O"], ["I-geo"]]) == ["O", "geo", "per"]


def test_ranking_on_synthetic_probabilities_puts_flipped_sentences_first(tmp_path: Path):
    """A confident model that agrees with the true labels: the flipped ones are the outliers."""
    rng = np.random.default_rng(0)
    data = make_sentences(200, seed=1)
    flipped = set(rng.choice(200, size=12, replace=False).tolist())
    classes = entity_classes([t for _, t in data])
    given, probs = [], []
    for i, (_, tags) in enumerate(data):
        true = [classes.index(t[2:] if t != "O" else "O") for t in tags]
        p = rng.dirichlet(np.ones(len(classes)) * 0.3, size=len(tags)) * 0.15
        p[np.arange(len(tags)), true] += 0.85
        probs.append(p / p.sum(1, keepdims=True))
        given.append(_flip(tags, "geo") if i in flipped else tags)
    issues = rank_label_issues(given, probs, classes)
    assert {issue.index for issue in issues[:12]} == flipped
    top = issues[0]
    assert top.words and all(g == "per" and p == "geo" for _, g, p, _ in top.words)

    sentences = [
        Sentence(tuple(w), tuple(t), f"s{i}") for i, ((w, _), t) in enumerate(zip(data, given))
    ]
    predicted = [t for _, t in data]
    write_audit_csv(issues, sentences, predicted, tmp_path / "issues.csv")
    rows = list(csv.DictReader((tmp_path / "issues.csv").open()))
    assert len(rows) == 200 and rows[0]["sentence_id"] == f"s{top.index}"
    assert "given per, predicted geo" in rows[0]["suspicious_words"]
    page = write_audit_page(issues, sentences, predicted, tmp_path / "a.html", "audit", top=20)
    html = page.read_text()
    assert html.count('class="s"') == 20 and 'class="flag"' in html


def test_folds_keep_documents_together_and_never_overlap():
    sentences = [
        Sentence(("a",), ("O",), f"s{i}", f"d{i // 5}" if i < 60 else None) for i in range(70)
    ]
    units = document_units(sentences, k=3)
    folds = assign_folds(units, 3, seed=0)
    for doc in range(12):
        assert len(set(folds[doc * 5 : doc * 5 + 5])) == 1
    assert sorted(np.bincount(folds)) == sorted(np.bincount(folds))  # three non-empty folds
    assert len(np.unique(folds)) == 3
    for fold in range(3):
        train, val, held = split_fold(units, folds, fold, 0.1, seed=0)
        assert set(train) | set(val) | set(held) == set(range(70))
        assert not (set(train) & set(val)) and not (set(held) & (set(train) | set(val)))
        assert len(val) and len(train)
        assert {units[i] for i in val}.isdisjoint({units[i] for i in train})
    # one document only: sentences are the units
    one = [Sentence(("a",), ("O",), f"s{i}", "d") for i in range(10)]
    assert len(set(document_units(one, k=3))) == 10


def test_missing_extra_names_the_pip_line(monkeypatch):
    monkeypatch.setattr(extras, "installed", lambda module: module != "cleanlab")
    with pytest.raises(MissingExtraError, match=r'pip install "nerlit\[audit\]"'):
        rank_label_issues([["O"]], [np.array([[1.0]])], ["O"])


def test_tiny_model_audit_ranks_flipped_sentences_near_the_top(tmp_path: Path):
    """k-fold training of a random-init tiny BERT on a very regular corpus in which 8 of 120
    sentences have their place labelled as a person: most of them rank in the top third."""
    flipped = set(range(3, 120, 15))
    sentences = _corpus(120, flipped)
    corpus = write_conll(tmp_path / "corpus.conll", sentences, docstart=False)
    starts = np.cumsum([1] + [len(words) + 1 for words, _ in sentences])
    overrides = [
        "model=tiny",
        "data=conll",
        f"data.train_file={corpus}",
        "data.batch_size=8",
        "splits=[train,val,test]",
        "k=3",
        "threads=1",  # a tiny model: more threads only contend
        "trainer.max_epochs=6",
        "trainer.accelerator=cpu",
        "trainer.precision=32",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger=none",
        "optimizer.lr=3e-3",
        "scheduler.warmup_ratio=0.0",
    ]
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("audit.yaml", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "audit")
    started, threads = time.perf_counter(), torch.get_num_threads()
    try:
        result = audit(cfg)
    finally:
        torch.set_num_threads(threads)
    print(f"\naudit of 120 sentences, k=3, tiny model: {time.perf_counter() - started:.1f} s")
    print("held-out F1 per fold:", [round(f, 3) for f in result["heldout_f1"]])
    ids = result["ranked_ids"]
    flipped_ids = {f"corpus.conll:{starts[i]}" for i in flipped}
    assert flipped_ids <= set(ids)
    top_third = set(ids[: len(ids) // 3])
    assert len(flipped_ids & top_third) > len(flipped_ids) / 2
    out = tmp_path / "audit"
    assert (out / "label_issues.csv").is_file() and (out / "label_issues.html").is_file()
    assert not (out / "folds" / "fold0" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("k=abc", "k=abc: expected an integer >= 2"),
        ("k=1", "k=1: expected an integer >= 2"),
        ("val_fraction=2", "val_fraction=2: expected a number in (0, 1)"),
        ("val_fraction=0", "val_fraction=0: expected a number in (0, 1)"),
        ("subset=0", "subset=0: expected an integer >= 1, or null (every sentence)"),
    ],
)
def test_bad_audit_options_are_one_line_before_the_corpus_is_read(
    tmp_path: Path, monkeypatch, override: str, line: str
):
    """``k=abc`` was a ValueError and ``val_fraction=2`` trained each fold on one sentence."""

    def never(cfg):
        raise AssertionError("the corpus was read before the options were checked")

    monkeypatch.setattr("nerlit.commands.audit.audited_sentences", never)
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "audit.yaml", overrides=["model=tiny", "data=conll", "data.train_file=x", override]
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "audit")
    with pytest.raises(ConfigError) as error:
        audit(cfg)
    assert str(error.value) == line

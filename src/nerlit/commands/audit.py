"""``python -m nerlit.audit``: rank a corpus's sentences by how likely their gold labels are wrong.

A model cannot judge the labels it was trained on (it has learnt them, errors included), so the
probabilities come from k-fold cross-prediction: the chosen sentences are split into ``k`` folds
(whole documents per fold, so document context never leaks a held-out sentence), and for each
fold a model is trained by ``nerlit train``'s own :func:`nerlit.train.train` on the other folds
(a ``val_fraction`` of them held out to pick its best checkpoint), then tags the fold with
:class:`nerlit.Tagger`. Every sentence thus gets per-word label probabilities from a model that
never saw it, which cleanlab's token-classification tools turn into a ranking
(:mod:`nerlit.evaluation.label_noise`). Training options are those of ``nerlit train``
(``model=``, ``trainer.max_epochs=``, ``optimizer.lr=`` ...), applied to every fold.

Outputs, in the run directory: ``label_issues.csv`` (every sentence, most suspicious first: id,
score, words, gold and predicted tags, the suspicious words with given and predicted class),
``label_issues.html`` (the same view as evaluate's errors.html, for the ``html_top`` worst),
``summary.json`` (folds, their held-out F1, counts) and ``folds/fold<i>/`` (each fold's run).
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console
from rich.table import Table

from nerlit import extras
from nerlit.commands.cli import exit_on_user_error
from nerlit.config import CONFIG_DIR
from nerlit.config_checks import validate
from nerlit.data.corpus import corpus_from_options
from nerlit.data.folds import assign_folds, choose_subset, document_units, split_fold
from nerlit.data.types import Sentence
from nerlit.errors import OptionError
from nerlit.evaluation.label_noise import (
    FEATURE,
    SentenceIssue,
    describe,
    entity_classes,
    merge_probabilities,
    rank_label_issues,
    write_audit_csv,
    write_audit_page,
)
from nerlit.evaluation.metrics import entity_scores

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def audited_sentences(cfg: DictConfig) -> tuple[str, list[Sentence], list[str]]:
    """The corpus name, the sentences of ``cfg.splits`` (in corpus order) and each one's split."""
    corpus, _ = corpus_from_options(OmegaConf.to_container(cfg.data, resolve=True))
    chosen = list(cfg.splits)
    unknown = [s for s in chosen if s not in SPLITS]
    if unknown or not chosen:
        raise OptionError(f"splits={chosen}: choose among {list(SPLITS)}")
    sentences, origin = [], []
    for split in chosen:
        part = corpus.splits()[split]
        sentences += part
        origin += [split] * len(part)
    return corpus.name, sentences, origin


def _write_jsonl(sentences: list[Sentence], path: Path) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for s in sentences:
            record = {"tokens": list(s.words), "tags": list(s.tags)}
            if s.document is not None:
                record["document"] = s.document
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def fold_config(cfg: DictConfig, directory: Path, name: str) -> DictConfig:
    """The training config of one fold: ``cfg`` with the fold's files as its data."""
    fold = copy.deepcopy(cfg)
    with open_dict(fold):
        fold.paths.output_dir = str(directory)
        fold.data.train_file = str(directory / "train.jsonl")
        fold.data.val_file = str(directory / "val.jsonl")
        fold.data.test_file = str(directory / "heldout.jsonl")
        fold.data.format = "jsonl"
        fold.data.encoding = "utf-8"
        fold.data.scheme = "iob2"
        # a rare type may be missing from a fold's training sentences
        fold.data.unknown_labels = "o"
        fold.data.name = name
        fold.train, fold.test, fold.ckpt_path = True, False, None
    return fold


def train_fold(cfg: DictConfig, directory: Path) -> Path:
    """Train one fold's model with nerlit train's code; its best checkpoint (else last.ckpt)."""
    from nerlit.commands.train import train

    summary = train(cfg)
    best = summary.get("best_checkpoint") or directory / "checkpoints" / "last.ckpt"
    if not Path(best).is_file():
        raise OptionError(
            "audit needs each fold's checkpoint: keep the model_checkpoint callback "
            "(callbacks=default)"
        )
    return Path(best)


def predict_fold(
    checkpoint: Path, sentences: list[Sentence], classes: list[str], batch_size: int
) -> tuple[list[np.ndarray], list[list[str]]]:
    """Per sentence, ``[words, classes]`` probabilities and the decoded IOB2 tags.

    Probabilities are the softmax of each word's label scores, the ones the decoder reads (for
    a CRF head, of its emissions).
    """
    from nerlit.inference.tagger import Tagger

    tagger = Tagger.load(checkpoint, batch_size=batch_size)
    logits = tagger.word_logits([s.words for s in sentences], [s.document for s in sentences])
    tags, _ = tagger.decode_logits(logits)  # the one decoder, on any backend
    probs = [
        merge_probabilities(torch.softmax(x.float(), -1).numpy(), tagger.labels, classes)
        for x in logits
    ]
    return probs, tags


def audit(cfg: DictConfig) -> dict:
    """Train the folds, predict every held-out sentence, rank, write the outputs."""
    extras.require(FEATURE)
    validate(cfg, "audit")  # before the corpus is read or any fold trained
    started = time.perf_counter()
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    k = int(cfg.k)
    if k < 2:
        raise OptionError(f"k={k}: cross-prediction needs at least 2 folds")
    name, sentences, origin = audited_sentences(cfg)
    chosen = choose_subset(len(sentences), cfg.get("subset"), int(cfg.audit_seed))
    sentences = [sentences[i] for i in chosen]
    origin = [origin[i] for i in chosen]
    units = document_units(sentences, k)
    folds = assign_folds(units, k, int(cfg.audit_seed))
    classes = entity_classes([s.tags for s in sentences])
    log.info("audit: %d sentences of %s (%s), %d folds", len(sentences), name, cfg.splits, k)
    probs: list[np.ndarray] = [np.empty(0)] * len(sentences)
    predicted: list[list[str]] = [[] for _ in sentences]
    fold_f1 = []
    for fold in range(k):
        directory = out / "folds" / f"fold{fold}"
        directory.mkdir(parents=True, exist_ok=True)
        train_idx, val_idx, held = split_fold(
            units, folds, fold, float(cfg.val_fraction), int(cfg.audit_seed)
        )
        _write_jsonl([sentences[i] for i in train_idx], directory / "train.jsonl")
        _write_jsonl([sentences[i] for i in val_idx], directory / "val.jsonl")
        _write_jsonl([sentences[i] for i in held], directory / "heldout.jsonl")
        log.info(
            "fold %d/%d: training on %d sentences (%d for validation), predicting %d",
            fold + 1,
            k,
            len(train_idx),
            len(val_idx),
            len(held),
        )
        fold_cfg = fold_config(cfg, directory, f"{name}-fold{fold}")
        checkpoint = train_fold(fold_cfg, directory)
        held_sentences = [sentences[i] for i in held]
        fold_probs, fold_tags = predict_fold(
            checkpoint, held_sentences, classes, int(cfg.data.eval_batch_size)
        )
        for i, p, t in zip(held, fold_probs, fold_tags):
            probs[i], predicted[i] = p, t
        gold = [list(s.tags) for s in held_sentences]
        fold_f1.append(entity_scores(gold, fold_tags, cfg.eval_mode)["micro"]["f1"])
        log.info("fold %d: held-out micro F1 %.4f", fold, fold_f1[-1])
        if not cfg.get("keep_checkpoints"):
            shutil.rmtree(directory / "checkpoints", ignore_errors=True)
    issues = rank_label_issues([s.tags for s in sentences], probs, classes)
    write_audit_csv(issues, sentences, predicted, out / "label_issues.csv", origin)
    if extras.installed("nervaluate"):
        title = f"{name}: sentences whose labels look wrong"
        write_audit_page(
            issues, sentences, predicted, out / "label_issues.html", title, cfg.get("html_top")
        )
    summary = {
        "corpus": name,
        "splits": list(cfg.splits),
        "sentences": len(sentences),
        "k": k,
        "classes": classes,
        "heldout_f1": fold_f1,
        "sentences_with_issues": sum(1 for i in issues if i.words),
        "word_issues": sum(len(i.words) for i in issues),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    Console().print(top_table(issues, sentences))
    log.info("label_issues.csv and label_issues.html in %s", out)
    return {**summary, "issues": issues, "ranked_ids": [sentences[i.index].id for i in issues]}


def top_table(issues: list[SentenceIssue], sentences: list[Sentence], rows: int = 10) -> Table:
    table = Table(title="Most suspicious sentences (label_issues.csv has them all)")
    for column in ("rank", "sentence", "score", "suspicious words"):
        table.add_column(column, justify="right" if column in ("rank", "score") else "left")
    for rank, issue in enumerate(issues[:rows], start=1):
        sentence = sentences[issue.index]
        shown = SentenceIssue(issue.index, issue.score, issue.words[:3])
        more = len(issue.words) - len(shown.words)
        text = describe(shown, sentence.words) + (f"; {more} more" if more > 0 else "")
        table.add_row(str(rank), sentence.id, f"{issue.score:.4f}", text)
    return table


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="audit.yaml")
@exit_on_user_error
def _main(cfg: DictConfig) -> None:
    audit(cfg)


def main() -> None:
    """``nerlit audit`` / ``python -m nerlit.audit``: the audit extra is checked first."""
    exit_on_user_error(extras.require)(FEATURE)
    _main()


if __name__ == "__main__":
    main()

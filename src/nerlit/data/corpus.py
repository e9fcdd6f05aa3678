"""Files -> one IOB2 :class:`Corpus`: scheme detection and repair, empty sentences, splits.

What was done to the data is counted in :class:`CorpusReport` and logged, never done silently.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from nerlit.data.readers import read_sentences
from nerlit.data.schemes import SCHEMES, detect_scheme, to_iob2
from nerlit.data.types import Corpus, Sentence
from nerlit.errors import DataError

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


@dataclass
class CorpusReport:
    """How the corpus was read: the numbers a user needs to trust it."""

    scheme: str = "iob2"
    repaired_tags: dict[str, int] = field(default_factory=dict)
    empty_skipped: dict[str, int] = field(default_factory=dict)
    carved_from_train: list[str] = field(default_factory=list)


def split_sentences(
    sentences: Sequence[Sentence], fractions: Sequence[float], seed: int
) -> tuple[list[Sentence], list[Sentence], list[Sentence]]:
    """A fixed, seeded sentence-level split: the same seed always gives the same three lists."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise DataError(f"data.split_fractions must be 3 numbers summing to 1, got {fractions}")
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    n_train = int(round(fractions[0] * len(order)))
    n_val = int(round(fractions[1] * len(order)))
    pick = [sentences[i] for i in order]
    return pick[:n_train], pick[n_train : n_train + n_val], pick[n_train + n_val :]


def _to_iob2(split: str, sentences: list[Sentence], report: CorpusReport) -> list[Sentence]:
    """One split in ``report.scheme`` -> IOB2, empty sentences dropped; both counted in report."""
    kept, repaired = [], 0
    for sentence in sentences:
        if not sentence.words:
            continue
        tags, fixed = to_iob2(sentence.tags, report.scheme)
        repaired += fixed
        kept.append(replace(sentence, tags=tuple(tags)))
    report.empty_skipped[split] = len(sentences) - len(kept)
    report.repaired_tags[split] = repaired
    if repaired:
        log.warning(
            "%s: repaired %d invalid %s tags (an I- that continues no entity starts one)",
            split,
            repaired,
            report.scheme,
        )
    if report.empty_skipped[split]:
        log.warning("%s: skipped %d empty sentences", split, report.empty_skipped[split])
    return kept


def load_corpus(
    train_file: str | Path,
    val_file: str | Path | None = None,
    test_file: str | Path | None = None,
    format: str = "conll",
    encoding: str | None = None,
    token_column: int = 0,
    tag_column: int = -1,
    scheme: str = "auto",
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    split_seed: int = 42,
    name: str | None = None,
) -> tuple[Corpus, CorpusReport]:
    """Read the files, convert to IOB2, and carve any missing val/test split out of train.

    Missing splits take their share of ``split_fractions`` from the train file (both missing:
    80/10/10 by default; only test missing: test gets 0.1 / 1.0 of train's sentences, and so on).
    """
    if scheme not in SCHEMES:
        raise DataError(f"unknown data.scheme {scheme!r}; expected one of {SCHEMES}")
    files = {"train": train_file, "val": val_file, "test": test_file}
    raw = {
        split: read_sentences(path, format, encoding, token_column, tag_column)
        for split, path in files.items()
        if path
    }
    report = CorpusReport()
    report.scheme = detect_scheme(s.tags for s in raw["train"]) if scheme == "auto" else scheme
    log.info("tag scheme: %s%s", report.scheme, " (detected)" if scheme == "auto" else "")
    splits = {split: _to_iob2(split, sentences, report) for split, sentences in raw.items()}
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        share = {s: f for s, f in zip(SPLITS, split_fractions)}
        total = share["train"] + sum(share[s] for s in missing)
        fractions = [share["train"] / total] + [
            share[s] / total if s in missing else 0.0 for s in ("val", "test")
        ]
        train, val, test = split_sentences(splits["train"], fractions, split_seed)
        splits["train"] = train
        splits.update({s: part for s, part in (("val", val), ("test", test)) if s in missing})
        report.carved_from_train = missing
        log.info("%s carved from %s (seed %d)", " and ".join(missing), train_file, split_seed)
    sources = {s: str(Path(p).expanduser().resolve()) for s, p in files.items() if p}
    corpus = Corpus(**splits, name=name or Path(train_file).stem, sources=sources)
    return corpus, report


def infer_format(path: str | Path) -> str:
    """The reader a file's name suggests: ``.jsonl`` -> jsonl, ``.csv(.gz)`` -> gmb, else conll."""
    name = Path(path).name.lower().removesuffix(".gz")
    if name.endswith(".jsonl"):
        return "jsonl"
    return "gmb" if name.endswith(".csv") else "conll"


def load_file(
    path: str | Path,
    split: str = "test",
    format: str | None = None,
    encoding: str | None = None,
    token_column: int = 0,
    tag_column: int = -1,
    scheme: str = "auto",
) -> tuple[list[Sentence], CorpusReport]:
    """One file as one IOB2 split, with no train file: what a user scores a model on.

    ``format=None`` infers it from the name (:func:`infer_format`); ``scheme='auto'`` detects it
    from this file's own tags, as :func:`load_corpus` does from train's.
    """
    if scheme not in SCHEMES:
        raise DataError(f"unknown data.scheme {scheme!r}; expected one of {SCHEMES}")
    format = format or infer_format(path)
    sentences = read_sentences(path, format, encoding, token_column, tag_column)
    report = CorpusReport()
    report.scheme = detect_scheme(s.tags for s in sentences) if scheme == "auto" else scheme
    log.info(
        "%s: %s, tag scheme %s%s", path, format, report.scheme, " (detected)" * (scheme == "auto")
    )
    return _to_iob2(split, sentences, report), report

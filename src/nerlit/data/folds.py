"""Folds for cross-prediction (``nerlit audit``): every sentence tagged by a model that never
saw it or any sentence of its document.

Folds are drawn by unit (a document; each sentence alone where a corpus has too few documents),
so a document's sentences, which repeat its names with the same annotator's labels, never sit on
both sides of a fold, and document context never leaks a held-out sentence.
"""

from __future__ import annotations

import math

import numpy as np

from nerlit.data.types import Sentence
from nerlit.errors import OptionError


def choose_subset(n: int, subset: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded random sample of ``subset`` sentences, in corpus order (all: None)."""
    if subset is None or subset >= n:
        return np.arange(n)
    if subset < 1:
        raise OptionError(f"subset={subset}: expected a positive number of sentences, or null")
    return np.sort(np.random.default_rng(seed).choice(n, size=subset, replace=False))


def document_units(sentences: list[Sentence], k: int) -> np.ndarray:
    """Each sentence's unit: its document (a sentence of none is its own), so that a document's
    sentences, which repeat its names with the same annotator's labels, are never split between
    training and prediction. With fewer than ``2 k`` documents (a file with one -DOCSTART-), each
    sentence is its own unit."""
    keys = [s.document if s.document is not None else ("s", i) for i, s in enumerate(sentences)]
    if len(set(keys)) < 2 * k:
        keys = list(range(len(sentences)))
    units: dict = {}
    return np.array([units.setdefault(key, len(units)) for key in keys], dtype=np.int64)


def assign_folds(units: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold per sentence, at random by unit: the sentences of one document share a fold."""
    n_units = int(units.max()) + 1 if len(units) else 0
    if n_units < k:
        raise OptionError(
            f"k={k} folds need at least {k} sentences (or documents); there are {n_units}"
        )
    return (np.random.default_rng(seed).permutation(n_units) % k)[units]


def split_fold(
    units: np.ndarray, folds: np.ndarray, fold: int, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sentence indices to train on, to validate on (a share of the other folds' units, to pick
    the best checkpoint) and to predict (the fold itself)."""
    held = np.flatnonzero(folds == fold)
    rest = np.flatnonzero(folds != fold)
    rest_units = np.unique(units[rest])
    n_val = min(max(1, math.ceil(val_fraction * len(rest_units))), len(rest_units) - 1)
    rng = np.random.default_rng([seed, fold])
    in_val = np.isin(units[rest], rng.choice(rest_units, size=n_val, replace=False))
    return rest[~in_val], rest[in_val], held

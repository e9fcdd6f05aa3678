"""Bootstrap confidence intervals for entity F1, and the paired test that compares two runs.

NER F1 moves by several tenths of a point between seeds of one recipe, so a single number says
little; an interval says how much of it the test set alone could explain. Entity F1 is not a
mean over sentences, so there is no closed-form standard error: the interval is a percentile
bootstrap (Efron & Tibshirani 1993) over *units*, which are documents where the corpus has them
(sentences of one document share topics and names, so resampling them one by one would treat
correlated errors as independent and give intervals that are too narrow) and sentences otherwise.

Everything runs on per-unit counts: an array ``[units, types, 3]`` of true positives, predicted
and gold entities. One resample is a vector of how often each unit was drawn, so a batch of
resamples is one matrix product ``weights[B, units] @ counts[units, types * 3]``; F1 per type,
micro, macro and the reference subset all come from the summed counts. 1,000 resamples of GMB's
test split (~4,800 sentences, 17 types) take a few tens of milliseconds (tests/test_bootstrap.py
prints the time).

Two runs on the same sentences are compared by :func:`paired_test`: the interval of the
difference is a *paired* bootstrap (both runs scored on the same resampled units; Koehn 2004,
Berg-Kirkpatrick et al. 2012, "An Empirical Investigation of Statistical Significance in NLP"),
and the p-value comes from approximate randomization (Noreen 1989; Yeh 2000, "More accurate
tests for the statistical significance of result differences", who introduced it for F-scores;
Riezler & Maxwell 2005 found it less prone to false positives than the bootstrap test; Dror et
al. 2018, "The Hitchhiker's Guide to Testing Statistical Significance in NLP", recommend it or the
bootstrap for F1): under the null hypothesis the two runs' outputs on a unit are exchangeable, so
each unit's two outputs are swapped at random and the p-value is the share of swaps whose F1
difference is at least as large, in absolute value, as the observed one (two-sided).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nerlit.data.schemes import split_tag
from nerlit.errors import DataError, OptionError
from nerlit.evaluation.metrics import MODES, extract_entities
from nerlit.evaluation.predictions import Predictions, check_same_sentences

log = logging.getLogger(__name__)

#: resamples and seed of the intervals in every report (``bootstrap.resamples``, ``.seed``)
RESAMPLES = 1000
#: approximate-randomization swaps (and paired resamples): p-values near 0.05 need ~1e4
PAIRED_RESAMPLES = 10_000
SEED = 0
CONFIDENCE = 0.95
#: fewer documents than this and the intervals resample sentences: a percentile bootstrap over a
#: handful of units is unreliable (a file with one -DOCSTART- would give a zero-width interval)
MIN_DOCUMENTS = 20
#: resamples per matrix product: bounds memory at ``CHUNK * units`` floats
CHUNK = 250

TP, N_PRED, N_GOLD = 0, 1, 2


@dataclass
class Counts:
    """Per-unit entity counts: ``values[unit, type, (tp, n_pred, n_gold)]``."""

    values: np.ndarray
    types: list[str]
    #: "sentence" or "document": what one row is
    unit: str = "sentence"

    @property
    def units(self) -> int:
        return self.values.shape[0]


def sentence_counts(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    mode: str = "strict",
    types: Sequence[str] | None = None,
) -> Counts:
    """Counts per sentence, from the same entity sets :func:`entity_scores` scores."""
    true_set, pred_set = extract_entities(gold, mode), extract_entities(pred, mode)
    if types is None:
        types = sorted({e[1] for e in true_set} | {e[1] for e in pred_set})
    index = {t: i for i, t in enumerate(types)}
    values = np.zeros((len(gold), len(types), 3), dtype=np.int64)
    for column, entities in ((TP, true_set & pred_set), (N_PRED, pred_set), (N_GOLD, true_set)):
        rows = [(e[0], index[e[1]]) for e in entities if e[1] in index]
        if rows:
            sentence, kind = np.array(rows).T
            np.add.at(values, (sentence, kind, column), 1)
    return Counts(values, list(types))


def unit_index(documents: Sequence[str | None] | None, min_documents: int = MIN_DOCUMENTS):
    """Each sentence's unit (its document; a sentence of no document is its own), or None when
    sentences are the units: no documents, or fewer than ``min_documents`` of them."""
    if documents is None:
        return None
    named = {d for d in documents if d is not None}
    if len(named) < min_documents:
        if named:
            log.info(
                "%d documents are too few to resample: intervals resample sentences", len(named)
            )
        return None
    ids: dict = {}
    keys = [d if d is not None else ("sentence", i) for i, d in enumerate(documents)]
    return np.array([ids.setdefault(key, len(ids)) for key in keys])


def group(counts: Counts, units: np.ndarray | None) -> Counts:
    """Sum the sentences of each unit (``units`` from :func:`unit_index`; None: unchanged)."""
    if units is None:
        return counts
    values = np.zeros((int(units.max()) + 1, *counts.values.shape[1:]), dtype=counts.values.dtype)
    np.add.at(values, units, counts.values)
    return Counts(values, counts.types, "document")


def _weights(rng: np.random.Generator, resamples: int, units: int) -> np.ndarray:
    """How often each unit is drawn in each resample: ``[resamples, units]``, rows sum to units."""
    draws = rng.integers(0, units, size=(resamples, units))
    draws += np.arange(resamples)[:, None] * units
    return np.bincount(draws.ravel(), minlength=resamples * units).reshape(resamples, units)


def _f1(tp: np.ndarray, n_pred: np.ndarray, n_gold: np.ndarray) -> np.ndarray:
    """2 tp / (pred + gold): the harmonic mean of P and R, 0 where there is nothing to score."""
    denominator = n_pred + n_gold
    return np.divide(2.0 * tp, denominator, out=np.zeros(np.shape(tp)), where=denominator > 0)


def f1_table(totals: np.ndarray, types: list[str], reference: Sequence[str] = ()) -> dict:
    """F1 per type and averaged, from summed counts ``[..., types, 3]``: arrays of shape ``[...]``.

    ``macro`` averages the types with gold entities in the last axis's data as
    :func:`~nerlit.evaluation.metrics.entity_scores` does; the caller passes which (``scored``).
    """
    per_type = _f1(totals[..., TP], totals[..., N_PRED], totals[..., N_GOLD])
    summed = totals.sum(axis=-2)
    table = {
        "per_type": {t: per_type[..., i] for i, t in enumerate(types)},
        "micro": _f1(summed[..., TP], summed[..., N_PRED], summed[..., N_GOLD]),
    }
    if reference:
        columns = [types.index(t) for t in reference if t in types]
        ref = totals[..., columns, :].sum(axis=-2)
        table["reference"] = _f1(ref[..., TP], ref[..., N_PRED], ref[..., N_GOLD])
    return table


def _macro(per_type: np.ndarray, support: np.ndarray) -> np.ndarray:
    scored = support > 0 if support.any() else np.ones_like(support, dtype=bool)
    return per_type[..., scored].mean(axis=-1) if scored.any() else np.zeros(per_type.shape[:-1])


def bootstrap_f1(
    counts: Counts,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    reference: Sequence[str] = (),
) -> dict:
    """F1 of each resample: ``{"micro": [B], "macro": [B], "per_type": {t: [B]}, "reference"}``."""
    flat = counts.values.reshape(counts.units, -1).astype(np.float64)
    rng = np.random.default_rng(seed)
    chunks = []
    for start in range(0, resamples, CHUNK):
        weights = _weights(rng, min(CHUNK, resamples - start), counts.units)
        chunks.append(weights @ flat)
    totals = np.concatenate(chunks).reshape(resamples, *counts.values.shape[1:])
    table = f1_table(totals, counts.types, reference)
    per_type = _f1(totals[..., TP], totals[..., N_PRED], totals[..., N_GOLD])
    table["macro"] = _macro(per_type, counts.values[..., N_GOLD].sum(axis=0))
    return table


def _interval(samples: np.ndarray, confidence: float) -> list[float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return [float(low), float(high)]


def f1_intervals(
    counts: Counts,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
    reference: Sequence[str] = (),
) -> dict:
    """Percentile intervals: ``{"micro": [lo, hi], "macro": ..., "per_type": {t: [lo, hi]}}``."""
    samples = bootstrap_f1(counts, resamples, seed, reference)
    out: dict = {k: _interval(v, confidence) for k, v in samples.items() if k != "per_type"}
    out["per_type"] = {t: _interval(v, confidence) for t, v in samples["per_type"].items()}
    return out


def add_intervals(
    scores: dict,
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    documents: Sequence[str | None] | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> dict:
    """Add the F1 intervals to :func:`entity_scores`' ``scores``, in place; returns ``scores``.

    ``scores["f1_ci"]``: ``{"micro": [lo, hi], "macro": ..., "reference": ..., "per_type":
    {type: [lo, hi]}}``; ``scores["bootstrap"]``: how (method, unit, units, resamples, seed,
    confidence). The score rows themselves are left as they were, so code comparing them with
    another scorer's rows is unaffected.
    """
    reference = scores.get("reference", {}).get("types", [])
    counts = sentence_counts(gold, pred, scores.get("mode", "strict"), list(scores["per_type"]))
    counts = group(counts, unit_index(documents))
    intervals = f1_intervals(counts, resamples, seed, confidence, reference)
    if "reference" not in scores:
        intervals.pop("reference", None)
    scores["f1_ci"] = intervals
    scores["bootstrap"] = {
        "method": "percentile bootstrap",
        "unit": counts.unit,
        "units": counts.units,
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
    }
    return scores


def interval_of(scores: dict, row: str) -> list[float] | None:
    """The interval of one report row: a type, ``micro``, ``macro`` or ``reference``."""
    intervals = scores.get("f1_ci") or {}
    if row in ("micro", "macro", "reference"):
        return intervals.get(row)
    return intervals.get("per_type", {}).get(row)


def interval_summary(scores: dict, prefix: str = "test") -> dict[str, float]:
    """The intervals as flat keys for a run summary (W&B): ``test/f1_ci_low``, ``test/f1_ci_high``,
    ``test/f1_reference_types_ci_low``/``_high``, ``test/per_type/<type>/f1_ci_low``/``_high``."""
    intervals = scores.get("f1_ci") or {}
    rows = {"f1": intervals.get("micro"), "f1_reference_types": intervals.get("reference")}
    rows.update({f"per_type/{t}/f1": ci for t, ci in intervals.get("per_type", {}).items()})
    flat: dict[str, float] = {}
    for name, interval in rows.items():
        if interval:
            flat[f"{prefix}/{name}_ci_low"], flat[f"{prefix}/{name}_ci_high"] = interval
    return flat


@dataclass
class PairedResult:
    """One row of a comparison: F1 of A and B, B - A, its interval and the p-value."""

    name: str
    f1_a: float
    f1_b: float
    interval: list[float]
    p_value: float

    @property
    def difference(self) -> float:
        return self.f1_b - self.f1_a


def paired_test(
    a: Counts,
    b: Counts,
    resamples: int = PAIRED_RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
    reference: Sequence[str] = (),
) -> list[PairedResult]:
    """Compare run B with run A on the same units (same gold): micro, reference, then per type.

    The interval of B - A is the paired percentile bootstrap; the p-value is two-sided
    approximate randomization with ``resamples`` random swaps, ``(1 + #{|d*| >= |d|}) /
    (1 + resamples)`` (never 0: the smallest reportable p is ``1 / (1 + resamples)``).
    """
    if a.types != b.types or a.values.shape != b.values.shape:
        raise ValueError("paired_test needs counts of the same units and types")
    if not np.array_equal(a.values[..., N_GOLD], b.values[..., N_GOLD]):
        raise ValueError("paired_test needs the same gold entities in both runs")
    flat_a = a.values.reshape(a.units, -1).astype(np.float64)
    flat_b = b.values.reshape(b.units, -1).astype(np.float64)
    shape = (*a.values.shape[1:],)
    support = a.values[..., N_GOLD].sum(axis=0)

    def table(totals: np.ndarray) -> dict:
        out = f1_table(totals, a.types, reference)
        per = _f1(totals[..., TP], totals[..., N_PRED], totals[..., N_GOLD])
        out["macro"] = _macro(per, support)
        return out

    observed_a, observed_b = table(a.values.sum(0)), table(b.values.sum(0))
    rng = np.random.default_rng(seed)
    boot_a, boot_b, swapped_a, swapped_b = [], [], [], []
    difference = flat_b - flat_a
    total_a, total_b = flat_a.sum(0), flat_b.sum(0)
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        weights = _weights(rng, size, a.units).astype(np.float64)
        boot_a.append(weights @ flat_a)
        boot_b.append(weights @ flat_b)
        swaps = rng.integers(0, 2, size=(size, a.units)).astype(np.float64) @ difference
        swapped_a.append(total_a + swaps)
        swapped_b.append(total_b - swaps)

    def stack(parts: list[np.ndarray]) -> dict:
        return table(np.concatenate(parts).reshape(resamples, *shape))

    boot_a, boot_b = stack(boot_a), stack(boot_b)
    perm_a, perm_b = stack(swapped_a), stack(swapped_b)

    def row(name: str, pick) -> PairedResult:
        f1_a, f1_b = float(pick(observed_a)), float(pick(observed_b))
        observed = abs(f1_b - f1_a)
        extreme = np.abs(pick(perm_b) - pick(perm_a)) >= observed - 1e-12
        return PairedResult(
            name,
            f1_a,
            f1_b,
            _interval(pick(boot_b) - pick(boot_a), confidence),
            float((1 + extreme.sum()) / (1 + resamples)),
        )

    rows = [row("micro", lambda t: t["micro"]), row("macro", lambda t: t["macro"])]
    if reference:
        rows.append(row(f"micro ({', '.join(reference)})", lambda t: t["reference"]))
    rows += [row(kind, lambda t, k=kind: t["per_type"][k]) for kind in a.types]
    return rows


def check_confidence(confidence: float) -> None:
    """Refuse a level outside (0, 1): 1.5 broke numpy's percentile deep in the bootstrap, and 0
    printed empty "0%" intervals as if they meant something. NaN fails the test too."""
    if not 0 < confidence < 1:
        raise OptionError(
            f"confidence={confidence}: expected a level between 0 and 1 (exclusive), e.g. 0.95"
        )


def compare_predictions(
    a: Predictions,
    b: Predictions,
    mode: str = "strict",
    reference: Sequence[str] = (),
    resamples: int = PAIRED_RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> tuple[list[PairedResult], dict]:
    """Run B against run A on the same scored sentences (:func:`paired_test` over documents
    where both mark them, else sentences): the rows, and how the comparison was made."""
    if mode not in MODES:
        raise OptionError(f"mode={mode!r}: expected one of {MODES}")
    check_confidence(confidence)
    check_same_sentences(a, b)
    gold = a.gold
    if not gold:
        raise DataError(
            f"nothing to compare: {a.source or 'A'} and {b.source or 'B'} hold no scored "
            f"sentences; give the predictions.conll of runs that scored a test split"
        )
    types = sorted(
        {split_tag(t)[1] for run in (gold, a.pred, b.pred) for s in run for t in s} - {""}
    )
    units_a, units_b = unit_index(a.documents), unit_index(b.documents)
    same_units = (units_a is None) == (units_b is None) and (
        units_a is None or np.array_equal(units_a, units_b)
    )
    units = units_a if same_units else None
    counts_a = group(sentence_counts(gold, a.pred, mode, types), units)
    counts_b = group(sentence_counts(gold, b.pred, mode, types), units)
    reference = [t for t in reference if t in types]
    rows = paired_test(counts_a, counts_b, resamples, seed, confidence, reference)
    how = {
        "mode": mode,
        "unit": counts_a.unit,
        "units": counts_a.units,
        "sentences": len(gold),
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
        "interval": "paired percentile bootstrap",
        "p_value": "two-sided approximate randomization",
    }
    return rows, how


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error over the comparisons), in input order.

    A few lines, so written here rather than pulling statsmodels into the install for it.
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted

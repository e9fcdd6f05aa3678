"""Entity-level precision/recall/F1 at word level, over a whole split at once.

seqeval extracts the entities (strict IOB2 by default: an I- that does not continue an entity
of its type is no entity). The counting is done here once, from those entity sets, so per-type,
micro, macro, weighted and reference-subset figures all come from the same true positives;
seqeval's own report has no way to give micro over a subset of types (the reference's five).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2, Entities

MODES = ("strict", "conlleval")


def extract_entities(sequences: Sequence[Sequence[str]], mode: str = "strict") -> set[tuple]:
    """Entities as (sentence, type, start, end) tuples; ``end`` is exclusive."""
    if mode == "strict":
        return {e.to_tuple() for sent in Entities(sequences, IOB2).entities for e in sent}
    if mode == "conlleval":
        return {
            (i, label, start, end + 1)
            for i, seq in enumerate(sequences)
            for label, start, end in get_entities(list(seq))
        }
    raise ValueError(f"unknown evaluation mode {mode!r}; expected one of {MODES}")


def _prf(tp: int, n_pred: int, n_true: int) -> dict[str, float]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": n_true}


def entity_scores(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    mode: str = "strict",
    reference_types: Sequence[str] = (),
) -> dict:
    """Per-type and averaged scores; ``reference`` is micro over ``reference_types`` alone."""
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("gold and predicted sequences must have the same shape")
    true_set, pred_set = extract_entities(gold, mode), extract_entities(pred, mode)
    hits = true_set & pred_set
    n_true = Counter(e[1] for e in true_set)
    n_pred = Counter(e[1] for e in pred_set)
    n_hit = Counter(e[1] for e in hits)
    types = sorted(set(n_true) | set(n_pred))
    per_type = {t: _prf(n_hit[t], n_pred[t], n_true[t]) for t in types}
    total = sum(n_true.values())
    scored = [per_type[t] for t in types if n_true[t]] or list(per_type.values())

    def average(weights: list[float]) -> dict[str, float]:
        norm = sum(weights) or 1.0
        avg = {
            k: sum(w * s[k] for w, s in zip(weights, scored)) / norm
            for k in ("precision", "recall", "f1")
        }
        return {**avg, "support": total}

    result = {
        "mode": mode,
        "per_type": per_type,
        "micro": _prf(len(hits), len(pred_set), len(true_set)),
        "macro": average([1.0] * len(scored)),
        "weighted": average([float(s["support"]) for s in scored]),
    }
    if reference_types:
        ref = set(reference_types)
        result["reference"] = {
            "types": sorted(ref),
            **_prf(
                sum(n_hit[t] for t in ref), sum(n_pred[t] for t in ref), sum(n_true[t] for t in ref)
            ),
        }
    return result

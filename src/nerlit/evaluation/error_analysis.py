"""Partial-match scores and error categories in the SemEval-2013 (Task 9.1) scheme.

Strict F1 says how often a model is exactly right, not how it is wrong: a span one word short
and a span of the wrong type cost the same. The SemEval-2013 scheme (Segura-Bedmar et al. 2013,
as popularised for NER by David Batista) scores four ways: *strict* (exact span and type),
*exact* (exact span, any type), *partial* (overlapping span, any type, half credit) and *type*
(overlapping span, right type). nervaluate is the maintained implementation; nerlit feeds it the
entities its own scorer reads (:func:`~nerlit.evaluation.metrics.extract_entities`, so the strict
row equals the strict micro F1 of the report) and takes its per-entity indices to sort every
predicted entity into one category:

- ``correct``: same span, same type;
- ``wrong_type``: same span, another type;
- ``wrong_boundary``: overlapping span of the same type;
- ``wrong_both``: overlapping span of another type;
- ``spurious``: overlapping no gold entity;

and every gold entity that no prediction overlaps is ``missed``. Per type, an error counts under
the gold entity's type (``spurious`` under the predicted one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from nerlit.evaluation.metrics import extract_entities

#: the categories of :mod:`nerlit.evaluation.error_analysis`, errors first, in report order
ERRORS = ("missed", "spurious", "wrong_type", "wrong_boundary", "wrong_both")
CATEGORIES = ("correct", *ERRORS)
LABELS = {
    "correct": "correct",
    "missed": "missed",
    "spurious": "spurious",
    "wrong_type": "wrong type",
    "wrong_boundary": "wrong boundary",
    "wrong_both": "wrong type and boundary",
}
#: nervaluate's strategies, in the scheme's order, with the scheme's names
STRATEGIES = {"strict": "strict", "exact": "exact", "partial": "partial", "ent_type": "type"}
_FIELDS = ("correct", "incorrect", "partial", "missed", "spurious", "precision", "recall", "f1")


@dataclass
class Span:
    """An entity of one sentence: ``words[start:end]``, its category, and for a wrong
    prediction the type of the gold entity it overlaps most.

    A predicted entity's category is one of :data:`CATEGORIES` but ``missed``; a gold entity's is
    ``correct``, ``missed`` or ``wrong`` (a prediction overlaps it with another span or type:
    that prediction carries the error)."""

    type: str
    start: int
    end: int
    category: str
    gold_type: str | None = None


@dataclass
class SentenceErrors:
    """Gold and predicted entities of one sentence, each with its category."""

    index: int
    gold: list[Span] = field(default_factory=list)
    pred: list[Span] = field(default_factory=list)

    def errors(self) -> list[Span]:
        """The missed gold entities and the predictions that are not correct."""
        missed = [s for s in self.gold if s.category == "missed"]
        return missed + [s for s in self.pred if s.category != "correct"]

    @property
    def n_errors(self) -> int:
        return len(self.errors())


@dataclass
class ErrorAnalysis:
    """nervaluate's scores (``overall``, ``per_type``), category counts, and every sentence."""

    overall: dict
    per_type: dict
    counts: dict[str, dict[str, int]]
    sentences: list[SentenceErrors]
    mode: str = "strict"

    def totals(self) -> dict[str, int]:
        return {c: sum(row.get(c, 0) for row in self.counts.values()) for c in CATEGORIES}

    def summary(self) -> dict:
        """What metrics.json keeps (``error_analysis``): scores and counts, not the sentences."""
        return {
            "scheme": "SemEval-2013 Task 9.1",
            "library": f"nervaluate {_version()}",
            "mode": self.mode,
            "overall": self.overall,
            "per_type": self.per_type,
            "categories": {"total": self.totals(), "per_type": self.counts},
            "sentences_with_errors": sum(1 for s in self.sentences if s.n_errors),
        }


def _version() -> str:
    try:
        return version("nervaluate")
    except PackageNotFoundError:
        return "?"


def _by_sentence(entities: set[tuple], n: int) -> list[list[tuple[str, int, int]]]:
    out: list[list[tuple[str, int, int]]] = [[] for _ in range(n)]
    for sentence, kind, start, end in sorted(entities):
        out[sentence].append((kind, start, end))
    for spans in out:
        spans.sort(key=lambda s: (s[1], s[2], s[0]))
    return out


def _as_dicts(spans: list[list[tuple[str, int, int]]]) -> list[list[dict]]:
    # nervaluate's ends are inclusive
    return [[{"label": k, "start": s, "end": e - 1} for k, s, e in sent] for sent in spans]


def _result(result) -> dict:
    return {
        k: (round(float(getattr(result, k)), 6) if k in _FIELDS[5:] else int(getattr(result, k)))
        for k in _FIELDS
    }


def _overlap(a: tuple[str, int, int], b: tuple[str, int, int]) -> int:
    return max(0, min(a[2], b[2]) - max(a[1], b[1]))


def analyse_errors(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], mode: str = "strict"
) -> ErrorAnalysis:
    """Score ``pred`` against ``gold`` (IOB2 tags per word) in the SemEval-2013 scheme."""
    from nervaluate import Evaluator

    if len(gold) != len(pred):
        raise ValueError("gold and predicted sequences must have the same shape")
    gold_spans = _by_sentence(extract_entities(gold, mode), len(gold))
    pred_spans = _by_sentence(extract_entities(pred, mode), len(pred))
    types = sorted({s[0] for sent in gold_spans + pred_spans for s in sent})
    overall = {name: _result_empty() for name in STRATEGIES}
    per_type: dict = {}
    indices: dict = {}
    if types:
        results = Evaluator(
            _as_dicts(gold_spans), _as_dicts(pred_spans), tags=types, loader="dict"
        ).evaluate()
        overall = {STRATEGIES[k]: _result(results["overall"][k]) for k in STRATEGIES}
        per_type = {
            t: {STRATEGIES[k]: _result(results["entities"][t][k]) for k in STRATEGIES}
            for t in types
        }
        indices = {
            k: {
                kind: set(getattr(results["overall_indices"][k], f"{kind}_indices"))
                for kind in ("correct", "incorrect", "spurious", "missed")
            }
            for k in ("strict", "exact", "ent_type")
        }
    counts: dict[str, Counter] = {t: Counter() for t in types}
    sentences = []
    for i, (gold_sent, pred_sent) in enumerate(zip(gold_spans, pred_spans)):
        record = SentenceErrors(i)
        predicted = set(pred_sent)
        for j, span in enumerate(gold_sent):
            if (i, j) in indices.get("strict", {}).get("missed", ()):
                category = "missed"
            else:
                category = "correct" if span in predicted else "wrong"
            record.gold.append(Span(*span, category))
            if category != "wrong":
                counts[span[0]][category] += 1
        for j, span in enumerate(pred_sent):
            key = (i, j)
            if key in indices["strict"]["correct"]:
                category, gold_type = "correct", span[0]
            elif key in indices["strict"]["spurious"]:
                category, gold_type = "spurious", None
            else:
                if key in indices["exact"]["correct"]:
                    category = "wrong_type"
                elif key in indices["ent_type"]["correct"]:
                    category = "wrong_boundary"
                else:
                    category = "wrong_both"
                near = max(gold_sent, key=lambda g: (_overlap(g, span), g[0] == span[0]))
                gold_type = near[0]
            record.pred.append(Span(*span, category, gold_type))
            if category != "correct":
                counts[gold_type or span[0]][category] += 1
        sentences.append(record)
    table = {t: {c: counts[t][c] for c in CATEGORIES} for t in types}
    return ErrorAnalysis(overall, per_type, table, sentences, mode)


def _result_empty() -> dict:
    return {k: 0.0 if k in _FIELDS[5:] else 0 for k in _FIELDS}


def to_markdown(analysis: dict) -> str:
    """Two tables for report.md: the four SemEval scores, then error counts per type."""
    lines = [
        f"## Partial-match scores ({analysis['scheme']}, {analysis['library']})",
        "",
        "| scheme | correct | incorrect | partial | missed | spurious | precision | recall | f1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in analysis["overall"].items():
        cells = [str(row[k]) for k in _FIELDS[:5]] + [f"{row[k]:.4f}" for k in _FIELDS[5:]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Error categories (entities; per gold type, spurious per predicted type)",
        "",
        "| type | " + " | ".join(LABELS[c] for c in CATEGORIES) + " |",
        "|---|" + "---:|" * len(CATEGORIES),
    ]
    categories = analysis["categories"]
    rows = [*categories["per_type"].items(), ("total", categories["total"])]
    for name, row in rows:
        lines.append(f"| {name} | " + " | ".join(str(row[c]) for c in CATEGORIES) + " |")
    return "\n".join(lines) + "\n"

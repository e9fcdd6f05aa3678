"""The test report: metrics.json, report.md and the same table printed with rich.

Each F1 comes with its bootstrap 95% interval when the scores carry one
(:func:`nerlit.evaluation.bootstrap.add_intervals`), and an ``error_analysis`` (``evaluate``'s
SemEval-2013 scores and error counts) adds its tables. :func:`write_test_outputs` is what both
``train`` and ``evaluate`` call after scoring a test split, so their run folders hold the same
files: metrics.json, report.md and predictions.conll.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from nerlit.data.types import Sentence
from nerlit.evaluation.bootstrap import CONFIDENCE, RESAMPLES, SEED, add_intervals, interval_of
from nerlit.evaluation.error_analysis import to_markdown as errors_markdown
from nerlit.evaluation.predictions import write_predictions

log = logging.getLogger(__name__)

_COLUMNS = ("precision", "recall", "f1", "support")


def report_rows(scores: dict) -> list[tuple[str, dict]]:
    """One row per type, then the averages, like sklearn/seqeval's classification report."""
    return [(name, row) for name, row, _ in _rows(scores)]


def _rows(scores: dict) -> list[tuple[str, dict, list[float] | None]]:
    """:func:`report_rows` with each row's F1 interval (None: none computed)."""
    rows = [(t, row, interval_of(scores, t)) for t, row in scores["per_type"].items()]
    for name in ("micro", "macro", "weighted"):
        rows.append((f"{name} avg", scores[name], interval_of(scores, name)))
    if "reference" in scores:
        ref = scores["reference"]
        rows.append(
            (f"micro avg ({', '.join(ref['types'])})", ref, interval_of(scores, "reference"))
        )
    return rows


def _interval_column(scores: dict) -> str | None:
    """The interval column's header, when the scores carry intervals."""
    boot = scores.get("bootstrap")
    if not boot or not scores.get("f1_ci"):
        return None
    return f"f1 {round(100 * boot['confidence'])}% CI"


def _cells(row: dict, interval: list[float] | None, column: str | None) -> list[str]:
    cells = [f"{row[k]:.4f}" for k in _COLUMNS[:3]]
    if column:
        cells.append(f"{interval[0]:.4f}–{interval[1]:.4f}" if interval else "")
    return [*cells, str(row["support"])]


def _bootstrap_note(scores: dict) -> str:
    boot = scores["bootstrap"]
    return (
        f"F1 intervals: {boot['method']} over {boot['units']} {boot['unit']}s, "
        f"{boot['resamples']} resamples, seed {boot['seed']}."
    )


def to_markdown(scores: dict, title: str = "Entity-level scores") -> str:
    interval = _interval_column(scores)
    header = ["type", *_COLUMNS[:3], *([interval] if interval else []), "support"]
    lines = [
        f"## {title} ({scores['mode']} IOB2, word level)",
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
    ]
    for name, row, ci in _rows(scores):
        lines.append(f"| {name} | " + " | ".join(_cells(row, ci, interval)) + " |")
    if interval:
        lines += ["", _bootstrap_note(scores)]
    text = "\n".join(lines) + "\n"
    if "error_analysis" in scores:
        text += "\n" + errors_markdown(scores["error_analysis"])
    return text


def to_table(scores: dict, title: str = "Entity-level scores") -> Table:
    interval = _interval_column(scores)
    caption = _bootstrap_note(scores) if interval else None
    table = Table(title=f"{title} ({scores['mode']} IOB2, word level)", caption=caption)
    table.add_column("type")
    for column in (*_COLUMNS[:3], *([interval] if interval else []), "support"):
        table.add_column(column, justify="right")
    for name, row, ci in _rows(scores):
        style = "bold" if name.startswith("micro") else None
        table.add_row(name, *_cells(row, ci, interval), style=style)
    return table


def errors_table(analysis: dict) -> Table:
    """The SemEval-2013 scores as printed after the main table."""
    table = Table(title=f"Partial-match scores ({analysis['scheme']})")
    columns = ("correct", "incorrect", "partial", "missed", "spurious", "precision", "recall", "f1")
    table.add_column("scheme")
    for column in columns:
        table.add_column(column, justify="right")
    for name, row in analysis["overall"].items():
        cells = [str(row[k]) for k in columns[:5]] + [f"{row[k]:.4f}" for k in columns[5:]]
        table.add_row(name, *cells)
    return table


def write_report(scores: dict, directory: str | Path, title: str = "Entity-level scores") -> None:
    """Write metrics.json and report.md into ``directory`` and print the table."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metrics.json").write_text(json.dumps(scores, indent=2))
    (directory / "report.md").write_text(to_markdown(scores, title))
    # a log file or pipe gets the whole table: rich would wrap it at 80 columns there
    console = Console() if Console().is_terminal else Console(width=200)
    console.print(to_table(scores, title))
    if "error_analysis" in scores:
        console.print(errors_table(scores["error_analysis"]))


def write_evaluation(
    scores: dict,
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    directory: str | Path,
    title: str,
    sentences: Sequence[Sentence] | None = None,
    mode: str = "strict",
    bootstrap: dict | None = None,
    plot: bool | None = None,
) -> dict:
    """Every file of a scored split, the same for ``nerlit evaluate`` and for the test at the
    end of ``nerlit train``: metrics.json (with 95% intervals and, where nervaluate is
    installed, the SemEval-2013 scores), report.md and the printed table, predictions.conll,
    confusion.json and confusion.png (``plot``: see :func:`write_confusion`), errors.html.
    """
    from nerlit import extras
    from nerlit.evaluation.confusion import write_confusion
    from nerlit.evaluation.error_analysis import analyse_errors
    from nerlit.evaluation.error_page import write_error_page

    directory = Path(directory)
    analysis = None
    if extras.installed("nervaluate"):
        analysis = analyse_errors(gold, pred, mode)
        scores["error_analysis"] = analysis.summary()
    else:
        log.warning("errors.html and partial-match scores skipped: nervaluate needs Python >= 3.11")
    write_test_outputs(scores, gold, pred, directory, title, sentences, **(bootstrap or {}))
    write_confusion(gold, pred, directory, mode, title=f"{title}: entity types", plot=plot)
    if analysis is not None and sentences is not None and len(sentences) == len(pred):
        write_error_page(sentences, analysis, directory / "errors.html", title)
    return scores


def write_test_outputs(
    scores: dict,
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    directory: str | Path,
    title: str = "Entity-level scores",
    sentences: Sequence[Sentence] | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> dict:
    """After scoring a test split: intervals into ``scores`` (in place), then metrics.json,
    report.md, the printed table and, given the ``sentences`` ``pred`` tags, predictions.conll.

    ``gold``/``pred`` are what was scored. When they cover ``sentences`` one for one, the
    sentences' documents are the bootstrap's units; otherwise (a run with limit_test_batches
    scored part of the split) sentences are, the scores are marked partial (``partial`` in
    metrics.json, "(partial: 2 of 5 sentences)" in the title of report.md and the table: a
    score of part of a split is no score of the split), and predictions.conll is not written,
    which the log says: a predictions file is read as the whole split's (``nerlit compare``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    whole = sentences is not None and len(sentences) == len(pred)
    if sentences is not None and not whole:
        scores["partial"] = {"sentences_scored": len(pred), "sentences": len(sentences)}
        title = f"{title} ({partial_label(len(pred), len(sentences))})"
    documents = [s.document for s in sentences] if whole else None
    add_intervals(scores, gold, pred, documents, resamples, seed, confidence)
    write_report(scores, directory, title)
    if whole:
        write_predictions(sentences, pred, directory / "predictions.conll")
    elif sentences is not None:
        log.warning(
            "predictions.conll not written: %d of the %d test sentences were scored "
            "(trainer.limit_test_batches), and it holds a whole split; set "
            "trainer.limit_test_batches=1.0 to write it",
            len(pred),
            len(sentences),
        )
    return scores


def partial_label(scored: int, total: int) -> str:
    """How a score of part of a split is labelled wherever it is shown."""
    return f"partial: {scored} of {total} sentences"

"""Which type each gold entity got: a per-type confusion matrix, with missed and spurious.

Rows are gold types, columns predicted types, both matched by exact span (the strict F1's
criterion), so the diagonal holds exactly the true positives, a row sums to that type's gold
support and a column to its predicted count. A gold entity with no predicted entity on the same
words is *missed*; a predicted entity with no gold entity on the same words is *spurious*. A
boundary error therefore shows as one missed plus one spurious, as it costs in F1.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from nerlit import extras
from nerlit.evaluation.metrics import extract_entities

log = logging.getLogger(__name__)

NONE = "(none)"


def entity_confusion(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], mode: str = "strict"
) -> dict:
    """``{"types", "rows", "columns", "counts"}``; the last row/column is :data:`NONE`."""
    gold_spans = {(s, b, e): t for s, t, b, e in extract_entities(gold, mode)}
    pred_spans = {(s, b, e): t for s, t, b, e in extract_entities(pred, mode)}
    types = sorted(set(gold_spans.values()) | set(pred_spans.values()))
    index = {t: i for i, t in enumerate([*types, NONE])}
    counts = [[0] * (len(types) + 1) for _ in range(len(types) + 1)]
    for span, kind in gold_spans.items():
        counts[index[kind]][index[pred_spans.get(span, NONE)]] += 1
    for span, kind in pred_spans.items():
        if span not in gold_spans:
            counts[index[NONE]][index[kind]] += 1
    labels = [*types, NONE]
    return {"types": types, "rows": labels, "columns": labels, "counts": counts}


def plot_confusion(confusion: dict, path: str | Path, title: str = "Entity types") -> Path:
    """A heatmap PNG: colour is the share of the row, the number is the count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = confusion["counts"]
    n = len(counts)
    shares = [[c / (sum(row) or 1) for c in row] for row in counts]
    size = 1.2 + 0.7 * n
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    rows = [*confusion["types"], "spurious"]
    columns = [*confusion["types"], "missed"]
    ax.set_xticks(range(n), columns, rotation=45, ha="right")
    ax.set_yticks(range(n), rows)
    ax.set_xlabel("predicted type")
    ax.set_ylabel("gold type")
    for i in range(n):
        for j in range(n):
            if counts[i][j] or (i == j and i < n - 1):
                colour = "white" if shares[i][j] > 0.6 else "black"
                ax.text(j, i, str(counts[i][j]), ha="center", va="center", color=colour, size=9)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of gold row")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_confusion(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    directory: str | Path,
    mode: str = "strict",
    title: str = "Entity types",
    plot: bool | None = None,
) -> dict:
    """confusion.json, and confusion.png in ``directory``.

    ``plot``: True draws the PNG (stops with the install command if matplotlib, the ``plots``
    extra, is missing); None draws it when matplotlib is installed and otherwise says once how to
    get it; False skips it. The JSON holds the same counts either way.
    """
    confusion = entity_confusion(gold, pred, mode)
    directory = Path(directory)
    (directory / "confusion.json").write_text(json.dumps(confusion, indent=1))
    feature = "the confusion-matrix PNG (plot=true)"
    if plot:
        extras.require(feature)
    if plot is None and not extras.installed("matplotlib"):
        log.warning(
            'confusion.png skipped: the plots extra is not installed (pip install "nerlit[plots]");'
            " confusion.json has the counts"
        )
        return confusion
    if plot is not False:
        plot_confusion(confusion, directory / "confusion.png", title)
    return confusion

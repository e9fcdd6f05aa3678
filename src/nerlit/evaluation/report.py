"""The test report: metrics.json, report.md and the same table printed with rich."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

_COLUMNS = ("precision", "recall", "f1", "support")


def report_rows(scores: dict) -> list[tuple[str, dict]]:
    """One row per type, then the averages, like sklearn/seqeval's classification report."""
    rows = list(scores["per_type"].items())
    rows += [(f"{name} avg", scores[name]) for name in ("micro", "macro", "weighted")]
    if "reference" in scores:
        ref = scores["reference"]
        rows.append((f"micro avg ({', '.join(ref['types'])})", ref))
    return rows


def to_markdown(scores: dict, title: str = "Entity-level scores") -> str:
    lines = [
        f"## {title} ({scores['mode']} IOB2, word level)",
        "",
        "| type | precision | recall | f1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in report_rows(scores):
        cells = [f"{row[k]:.4f}" for k in _COLUMNS[:3]] + [str(row["support"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_table(scores: dict, title: str = "Entity-level scores") -> Table:
    table = Table(title=f"{title} ({scores['mode']} IOB2, word level)")
    table.add_column("type")
    for column in _COLUMNS:
        table.add_column(column, justify="right")
    for name, row in report_rows(scores):
        style = "bold" if name.startswith("micro") else None
        cells = [f"{row[k]:.4f}" for k in _COLUMNS[:3]] + [str(row["support"])]
        table.add_row(name, *cells, style=style)
    return table


def write_report(scores: dict, directory: str | Path, title: str = "Entity-level scores") -> None:
    """Write metrics.json and report.md into ``directory`` and print the table."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metrics.json").write_text(json.dumps(scores, indent=2))
    (directory / "report.md").write_text(to_markdown(scores, title))
    Console().print(to_table(scores, title))

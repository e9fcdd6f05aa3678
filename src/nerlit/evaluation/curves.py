"""Learning curves: ``curves.png`` of a run, and the dev F1 of several runs in one plot.

Drawn from the CSV log every run keeps (``csv/metrics.csv``, Lightning's ``CSVLogger``), so a
run logged only to W&B or TensorBoard still gets its picture where its files are. matplotlib is
the ``plots`` extra, as for the confusion matrix.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from pathlib import Path

from nerlit import extras

log = logging.getLogger(__name__)

#: the CSV columns drawn: training loss per logged step, dev F1 (micro and per type) per
#: validation, and the learning rate of the decayed parameter group
LOSS, DEV_F1, DEV_TYPE_PREFIX, LR_PREFIX = "train/loss", "val/f1", "val/f1/", "lr-"


def read_curves(metrics_csv: str | Path) -> dict[str, list[tuple[float, float]]]:
    """Each logged column as (step, value) points, in step order; empty cells skipped."""
    curves: dict[str, list[tuple[float, float]]] = {}
    with Path(metrics_csv).open(newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                step = float(row.get("step") or "nan")
            except ValueError:
                continue
            if step != step:  # nan: a row without a step
                continue
            for column, cell in row.items():
                if column in ("step", "epoch") or not cell:
                    continue
                try:
                    curves.setdefault(column, []).append((step, float(cell)))
                except ValueError:
                    continue
    return {column: sorted(points) for column, points in curves.items()}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_run_curves(metrics_csv: str | Path, path: str | Path, title: str = "") -> Path | None:
    """``curves.png``: train loss, dev F1 (micro, bold, and per type) and the learning rate
    against the optimizer step, one panel each; None when the log holds no training step."""
    curves = read_curves(metrics_csv)
    if LOSS not in curves:
        return None
    plt = _pyplot()
    rates = sorted(c for c in curves if c.startswith(LR_PREFIX))
    fig, (loss_ax, f1_ax, lr_ax) = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    steps, losses = zip(*curves[LOSS], strict=True)
    few = "." if len(steps) < 30 else None  # a short run's few points stay visible
    loss_ax.plot(steps, losses, color="tab:blue", linewidth=1, marker=few)
    loss_ax.set_ylabel("train loss")
    loss_ax.set_yscale("log")
    for column in sorted(c for c in curves if c.startswith(DEV_TYPE_PREFIX)):
        x, y = zip(*curves[column], strict=True)
        f1_ax.plot(x, y, marker=".", linewidth=1, alpha=0.7, label=column[len(DEV_TYPE_PREFIX) :])
    if DEV_F1 in curves:
        x, y = zip(*curves[DEV_F1], strict=True)
        f1_ax.plot(x, y, marker="o", color="black", linewidth=2.5, label="micro")
        f1_ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        f1_ax.text(0.5, 0.5, "no dev evaluation logged", ha="center", transform=f1_ax.transAxes)
    f1_ax.set_ylabel("dev F1")
    f1_ax.set_ylim(0, 1)
    f1_ax.grid(alpha=0.3)
    if rates:
        x, y = zip(*curves[rates[0]], strict=True)
        lr_ax.plot(x, y, color="tab:green", marker="." if len(x) < 30 else None)
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("optimizer step")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    if title:
        fig.suptitle(title)
    return _save(plt, fig, path)


def _save(plt, fig, path: str | Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_run_curves(run_dir: str | Path) -> Path | None:
    """``<run>/curves.png`` from ``<run>/csv/metrics.csv`` where the run has one and matplotlib
    is installed (else one line saying how to get it); never fails a finished run."""
    run_dir = Path(run_dir)
    metrics_csv = run_dir / "csv" / "metrics.csv"
    if not metrics_csv.is_file():
        return None
    if not extras.installed("matplotlib"):
        log.info(
            'curves.png skipped: the plots extra is not installed (pip install "nerlit[plots]")'
        )
        return None
    try:
        return plot_run_curves(metrics_csv, run_dir / "curves.png", title=run_dir.name)
    except (OSError, ValueError) as error:
        log.warning("curves.png not drawn: %s", error)
        return None


def plot_dev_f1(runs: Mapping[str, str | Path], path: str | Path, title: str = "") -> Path:
    """The dev F1 curves of several runs (name -> metrics.csv) in one plot."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, metrics_csv in runs.items():
        points = read_curves(metrics_csv).get(DEV_F1)
        if points:
            x, y = zip(*points, strict=True)
            ax.plot(x, y, marker="o", linewidth=1.5, label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("dev F1 (micro)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(plt, fig, path)

"""A sweep's jobs in one table, best first: ``sweep.md`` and ``sweep.csv`` in the sweep folder.

A Hydra callback rather than code in ``train``: Hydra calls it with the sweep folder for every
job, whatever the sweeper (basic, Optuna) or launcher (local, Submitit). The table is rewritten
after each job, so it also exists, listing the failed job, when a job fails and Hydra stops
before ``on_multirun_end``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import yaml
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

COLUMNS = ("job", "status", "overrides", "best_val_f1", "test_f1", "run_dir")


def _job_rows(sweep_dir: Path, statuses: dict[str, str], final: bool) -> list[dict[str, Any]]:
    jobs = []
    for overrides_file in sorted(sweep_dir.glob("*/.hydra/overrides.yaml")):
        job_dir = overrides_file.parent.parent
        summary_file = job_dir / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        status = statuses.get(str(job_dir))
        if status is None:
            status = "completed" if summary else ("failed" if final else "pending")
        jobs.append(
            {
                "job": str(job_dir.relative_to(sweep_dir)),
                "status": status,
                "all_overrides": yaml.safe_load(overrides_file.read_text()) or [],
                "best_val_f1": summary.get("best_val_f1"),
                "test_f1": summary.get("test_f1"),
                "run_dir": str(job_dir),
            }
        )
    # what varies between jobs is what tells them apart; shared overrides would only add noise
    shared = set.intersection(*(set(j["all_overrides"]) for j in jobs)) if len(jobs) > 1 else set()
    for job in jobs:
        job["overrides"] = " ".join(o for o in job.pop("all_overrides") if o not in shared)
    jobs.sort(key=lambda j: int(j["job"]) if j["job"].isdigit() else j["job"])
    jobs.sort(key=lambda j: (j["best_val_f1"] is None, -(j["best_val_f1"] or 0.0)))
    return jobs


def _f1(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def to_markdown(rows: list[dict[str, Any]], title: str) -> str:
    lines = [
        f"## {title}",
        "",
        "| rank | job | status | overrides | best val F1 | test F1 |",
        "|---:|---|---|---|---:|---:|",
    ]
    for rank, row in enumerate(rows, start=1):
        overrides = row["overrides"].replace("|", "\\|") or "(none)"
        lines.append(
            f"| {rank} | {row['job']} | {row['status']} | `{overrides}` | "
            f"{_f1(row['best_val_f1'])} | {_f1(row['test_f1'])} |"
        )
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    """Jobs of a parallel launcher may rewrite the table at once; readers never see half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_sweep_summary(
    sweep_dir: str | Path, statuses: dict[str, str] | None = None, final: bool = True
) -> list[dict[str, Any]]:
    """Read every job's overrides and summary.json under ``sweep_dir``; write the two tables.

    ``final=False`` (mid-sweep) marks jobs without a result as pending rather than failed.
    """
    sweep_dir = Path(sweep_dir)
    rows = _job_rows(sweep_dir, statuses or {}, final)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    _write_atomic(sweep_dir / "sweep.csv", buffer.getvalue())
    _write_atomic(sweep_dir / "sweep.md", to_markdown(rows, f"Sweep {sweep_dir.name}"))
    return rows


def print_sweep_summary(rows: list[dict[str, Any]], sweep_dir: Path) -> None:
    table = Table(title=f"Sweep {sweep_dir} (best first)")
    for column in ("job", "status", "overrides", "best val F1", "test F1"):
        table.add_column(column, justify="right" if "F1" in column else "left")
    for row in rows:
        table.add_row(
            row["job"],
            row["status"],
            row["overrides"],
            _f1(row["best_val_f1"]),
            _f1(row["test_f1"]),
        )
    Console().print(table)


class SweepSummary(Callback):
    """Hydra callback (conf/train.yaml, ``hydra.callbacks``) keeping the sweep table current."""

    def __init__(self) -> None:
        self.statuses: dict[str, str] = {}

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        job_dir = str(Path(config.hydra.runtime.output_dir))
        failed = job_return.status == JobStatus.FAILED
        self.statuses[job_dir] = "failed" if failed else "completed"
        write_sweep_summary(config.hydra.sweep.dir, self.statuses, final=False)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            rows = write_sweep_summary(sweep_dir, self.statuses, final=True)
            print_sweep_summary(rows, sweep_dir)

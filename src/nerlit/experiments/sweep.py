"""A sweep's jobs in one table, best first: ``sweep.md`` and ``sweep.csv`` in the sweep folder.

A Hydra callback rather than code in ``train``: Hydra calls it with the sweep folder for every
job, whatever the sweeper (basic, Optuna) or launcher (local, Submitit). The table is rewritten
after each job, so it also exists, listing the failed job, when a job fails and Hydra stops
before ``on_multirun_end`` (Hydra's basic sweeper raises the first failure once all jobs ran).

A failed job's one-line reason goes to ``<job>/error.txt`` and the table's ``error`` column:
written by the job's own process, so the table has it whatever the launcher. A nerlit user error
in a job fails that job only (``nerlit.cli.exit_on_user_error``), and the sweep goes on.
"""

from __future__ import annotations

import contextlib
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

COLUMNS = ("job", "status", "overrides", "best_val_f1", "test_f1", "run_dir", "error")

#: A failed job's reason, one line, in its directory.
ERROR_FILE = "error.txt"


def _job_rows(sweep_dir: Path, statuses: dict[str, str], final: bool) -> list[dict[str, Any]]:
    jobs = []
    for overrides_file in sorted(sweep_dir.glob("*/.hydra/overrides.yaml")):
        job_dir = overrides_file.parent.parent
        summary_file = job_dir / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        error_file = job_dir / ERROR_FILE
        error = error_file.read_text().strip() if error_file.is_file() else ""
        status = statuses.get(str(job_dir))
        if status is None:
            status = "completed" if summary else ("failed" if final or error else "pending")
        jobs.append(
            {
                "job": str(job_dir.relative_to(sweep_dir)),
                "status": status,
                "all_overrides": yaml.safe_load(overrides_file.read_text()) or [],
                "best_val_f1": summary.get("best_val_f1"),
                "test_f1": summary.get("test_f1"),
                "run_dir": str(job_dir),
                "error": error if status == "failed" else "",
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
        "| rank | job | status | overrides | best val F1 | test F1 | error |",
        "|---:|---|---|---|---:|---:|---|",
    ]
    for rank, row in enumerate(rows, start=1):
        overrides = row["overrides"].replace("|", "\\|") or "(none)"
        error = row.get("error", "").replace("|", "\\|")
        lines.append(
            f"| {rank} | {row['job']} | {row['status']} | `{overrides}` | "
            f"{_f1(row['best_val_f1'])} | {_f1(row['test_f1'])} | {error} |"
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


def job_error(job_return: JobReturn) -> str:
    """A failed job's reason in one line: nerlit's own line, else the exception's type and first
    line (its traceback is Hydra's to print at the end of the sweep)."""
    # the exception itself: JobReturn.return_value would re-raise it and print to stderr
    error = getattr(job_return, "_return_value", None)
    if not isinstance(error, BaseException):
        return "failed"
    text = str(error).strip()
    if not text.startswith("nerlit:"):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    first = text.splitlines()[0] if text else "failed"
    return first if len(first) <= 500 else first[:497] + "..."


def print_sweep_summary(rows: list[dict[str, Any]], sweep_dir: Path) -> None:
    table = Table(title=f"Sweep {sweep_dir} (best first)")
    for column in ("job", "status", "overrides", "best val F1", "test F1", "error"):
        table.add_column(column, justify="right" if "F1" in column else "left")
    for row in rows:
        table.add_row(
            row["job"],
            row["status"],
            row["overrides"],
            _f1(row["best_val_f1"]),
            _f1(row["test_f1"]),
            row["error"],
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
        if failed:
            # an unwritable job directory (the failure itself) keeps the status alone
            with contextlib.suppress(OSError):
                Path(job_dir, ERROR_FILE).write_text(job_error(job_return) + "\n")
        write_sweep_summary(config.hydra.sweep.dir, self.statuses, final=False)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            rows = write_sweep_summary(sweep_dir, self.statuses, final=True)
            print_sweep_summary(rows, sweep_dir)

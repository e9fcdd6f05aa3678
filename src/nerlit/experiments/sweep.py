"""A sweep's jobs in one table, best first: ``sweep.md`` and ``sweep.csv`` in the sweep folder.

A Hydra callback rather than code in ``train``: Hydra calls it with the sweep folder for every
job, whatever the sweeper (basic, Optuna) or launcher (local, Submitit). The table is rewritten
after each job, so it also exists, listing the failed job, when a job fails and Hydra stops
before ``on_multirun_end`` (Hydra's basic sweeper raises the first failure once all jobs ran).

A sweep that repeats settings over seeds (``-m seed=1,2,3 optimizer.lr=5e-5,1e-4``) also gets
``sweep_groups.md`` / ``sweep_groups.csv`` and a section of ``sweep.md``: one row per setting (the
overrides other than ``seed``) with the mean, standard deviation and n of its jobs' val and test
F1. NER F1 moves by several tenths of a point between seeds of one recipe, so a single job per
setting cannot say whether one setting beats another; the spread can.

A failed job's one-line reason goes to ``<job>/error.txt`` and the table's ``error`` column:
written by the job's own process, so the table has it whatever the launcher. A nerlit user error
in a job fails that job only (``nerlit.commands.cli.exit_on_user_error``), and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import statistics
from collections.abc import Sequence
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

GROUP_COLUMNS = (
    "overrides",
    "n",
    "n_failed",
    "n_pending",
    "val_f1_mean",
    "val_f1_std",
    "test_f1_mean",
    "test_f1_std",
    "seeds",
    "jobs",
)

#: A failed job's reason, one line, in its directory.
ERROR_FILE = "error.txt"

#: the override key that tells repeats of one setting apart
SEED_KEY = "seed"
GROUPS_TITLE = "settings over seeds (best mean val F1 first)"


def _job_order(row: dict[str, Any]) -> tuple[int, int, str]:
    """Job folders 0, 1, ..., 10 in number order, then any other names."""
    job = row["job"]
    return (0, int(job), "") if job.isdigit() else (1, 0, job)


def sweep_jobs(
    sweep_dir: Path, statuses: dict[str, str] | None = None, final: bool = True
) -> list[dict[str, Any]]:
    """The jobs of a sweep folder, best dev F1 first: job, status, overrides that vary,
    best_val_f1, test_f1, run_dir, error."""
    statuses = statuses or {}
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
        job["varying"] = [o for o in job.pop("all_overrides") if o not in shared]
        job["overrides"] = " ".join(job["varying"])
    jobs.sort(key=_job_order)
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


def _override_key(override: str) -> str:
    """``seed`` of ``seed=1``, ``+seed=1`` or ``++seed=1`` (Hydra's add and force prefixes)."""
    return override.split("=", 1)[0].lstrip("+~")


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1: the seeds are a sample of all seeds); one
    value has no spread to estimate, so its std is None, not 0."""
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def group_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The jobs grouped by their overrides other than ``seed``, best mean val F1 first.

    ``rows`` are the per-job rows (``varying``: the job's overrides that differ between jobs,
    ``status``, ``best_val_f1``, ``test_f1``). Only completed jobs enter the means: a failed job
    would pull its group down for a reason that is not the setting's accuracy, so it is counted
    in ``n_failed`` instead (and a job still running in ``n_pending``). ``n`` is the number of
    completed jobs with a val F1; a group whose jobs ran without testing has no test mean.
    """
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in sorted(rows, key=_job_order):  # seeds and jobs listed in the order they ran
        overrides = row.get("varying", row["overrides"].split())
        key = tuple(o for o in overrides if _override_key(o) != SEED_KEY)
        seed = next((o.split("=", 1)[1] for o in overrides if _override_key(o) == SEED_KEY), "")
        group = groups.setdefault(
            key, {"val": [], "test": [], "failed": 0, "pending": 0, "seeds": [], "jobs": []}
        )
        group["jobs"].append(row["job"])
        group["seeds"].append(seed)
        if row["status"] == "failed":
            group["failed"] += 1
        elif row["status"] == "pending":
            group["pending"] += 1
        elif row["best_val_f1"] is not None:
            group["val"].append(float(row["best_val_f1"]))
            if row["test_f1"] is not None:
                group["test"].append(float(row["test_f1"]))
    table = []
    for key, group in groups.items():
        val_mean, val_std = _mean_std(group["val"])
        test_mean, test_std = _mean_std(group["test"])
        table.append(
            {
                "overrides": " ".join(key),
                "n": len(group["val"]),
                "n_failed": group["failed"],
                "n_pending": group["pending"],
                "val_f1_mean": val_mean,
                "val_f1_std": val_std,
                "test_f1_mean": test_mean,
                "test_f1_std": test_std,
                "seeds": ",".join(s for s in group["seeds"] if s),
                "jobs": ",".join(group["jobs"]),
            }
        )
    table.sort(key=lambda g: (g["val_f1_mean"] is None, -(g["val_f1_mean"] or 0.0)))
    return table


def has_repeats(groups: Sequence[dict[str, Any]]) -> bool:
    """Whether some setting ran more than once: else the grouped table repeats the job table."""
    return any(len(g["jobs"].split(",")) > 1 for g in groups)


def groups_to_markdown(groups: Sequence[dict[str, Any]], title: str) -> str:
    lines = [
        f"## {title}",
        "",
        "Mean ± standard deviation over the completed jobs of each setting (failed jobs are "
        "counted in n failed, not in the means).",
        "",
        "| rank | overrides | n | n failed | val F1 mean | val F1 std | test F1 mean | "
        "test F1 std | seeds |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for rank, group in enumerate(groups, start=1):
        overrides = group["overrides"].replace("|", "\\|") or "(none)"
        lines.append(
            f"| {rank} | `{overrides}` | {group['n']} | {group['n_failed']} | "
            f"{_f1(group['val_f1_mean'])} | {_f1(group['val_f1_std'])} | "
            f"{_f1(group['test_f1_mean'])} | {_f1(group['test_f1_std'])} | {group['seeds']} |"
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
    rows = sweep_jobs(sweep_dir, statuses or {}, final)
    _write_atomic(sweep_dir / "sweep.csv", _csv(rows, COLUMNS))
    markdown = to_markdown(rows, f"Sweep {sweep_dir.name}")
    groups = group_rows(rows)
    if has_repeats(groups):
        grouped = groups_to_markdown(groups, f"Sweep {sweep_dir.name}: {GROUPS_TITLE}")
        _write_atomic(sweep_dir / "sweep_groups.csv", _csv(groups, GROUP_COLUMNS))
        _write_atomic(sweep_dir / "sweep_groups.md", grouped)
        markdown += "\n" + grouped
    _write_atomic(sweep_dir / "sweep.md", markdown)
    return rows


def _csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


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
    groups = group_rows(rows)
    if has_repeats(groups):
        print_group_summary(groups, sweep_dir)


def print_group_summary(groups: Sequence[dict[str, Any]], sweep_dir: Path) -> None:
    table = Table(title=f"Sweep {sweep_dir}: {GROUPS_TITLE}")
    for column in ("overrides", "n", "n failed", "val F1", "test F1", "seeds"):
        table.add_column(column, justify="left" if column in ("overrides", "seeds") else "right")
    for group in groups:
        table.add_row(
            group["overrides"] or "(none)",
            str(group["n"]),
            str(group["n_failed"]),
            _mean_pm_std(group["val_f1_mean"], group["val_f1_std"]),
            _mean_pm_std(group["test_f1_mean"], group["test_f1_std"]),
            group["seeds"],
        )
    Console().print(table)


def _mean_pm_std(mean: float | None, std: float | None) -> str:
    return "" if mean is None else _f1(mean) + ("" if std is None else f" ± {std:.4f}")


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

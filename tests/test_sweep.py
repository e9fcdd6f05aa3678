"""Sweeps: one directory per job, a ranked sweep table, and the Optuna search over four knobs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import yaml

from nerlit.experiments.sweep import write_sweep_summary
from tests.conftest import REPO_ROOT, tiny_overrides


def _run(args: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "nerlit.train", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _table(sweep: Path) -> list[dict]:
    with open(sweep / "sweep.csv") as handle:
        return list(csv.DictReader(handle))


def _summary(job_dir: str | Path) -> dict:
    return json.loads((Path(job_dir) / "summary.json").read_text())


def test_multirun_ranks_jobs_in_sweep_md_and_csv(gmb_file: Path, tmp_path: Path):
    sweep = tmp_path / "sweep"
    result = _run(
        ["-m", *tiny_overrides(gmb_file), "optimizer.lr=1e-4,5e-3", f"hydra.sweep.dir={sweep}"]
    )
    rows = _table(sweep)
    assert sorted(r["job"] for r in rows) == ["0", "1"]
    assert sorted(r["overrides"] for r in rows) == ["optimizer.lr=0.0001", "optimizer.lr=0.005"]
    for row in rows:
        summary = _summary(row["run_dir"])
        assert row["status"] == "completed"
        assert float(row["best_val_f1"]) == summary["best_val_f1"]
        assert float(row["test_f1"]) == summary["test_f1"]
        assert summary["run_dir"] == str(sweep / row["job"])
    scores = [float(r["best_val_f1"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]
    markdown = (sweep / "sweep.md").read_text()
    assert markdown.index(f"`{rows[0]['overrides']}`") < markdown.index(f"`{rows[1]['overrides']}`")
    assert "(best first)" in result.stdout


def test_optuna_search_maximizes_best_val_f1(gmb_file: Path, tmp_path: Path):
    sweep = tmp_path / "optuna"
    # a batch size given on the command line would be fixed, not searched
    fixed = [o for o in tiny_overrides(gmb_file) if not o.startswith("data.batch_size=")]
    _run(
        [
            *fixed,
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=3",
            f"hydra.sweep.dir={sweep}",
        ]
    )
    rows = _table(sweep)
    assert len(rows) == 3 and all(r["status"] == "completed" for r in rows)
    knobs = ("optimizer.lr=", "data.batch_size=", "scheduler.warmup_ratio=", "model.dropout=")
    for row in rows:
        job = yaml.safe_load((Path(row["run_dir"]) / ".hydra" / "overrides.yaml").read_text())
        assert all(any(o.startswith(knob) for o in job) for knob in knobs), job
        assert "optimizer.lr=" in row["overrides"]  # what varies between trials is in the table
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_value"] == max(_summary(r["run_dir"])["best_val_f1"] for r in rows)
    assert float(rows[0]["best_val_f1"]) == results["best_value"]


def _job(sweep: Path, name: str, overrides: list[str], summary: dict | None) -> None:
    (sweep / name / ".hydra").mkdir(parents=True)
    (sweep / name / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if summary is not None:
        (sweep / name / "summary.json").write_text(json.dumps(summary))


def test_table_lists_failed_and_pending_jobs_after_the_scored_ones(tmp_path: Path):
    common = ["model=tiny", "debug=fast"]
    _job(tmp_path, "0", [*common, "optimizer.lr=1"], {"best_val_f1": 0.5, "test_f1": 0.4})
    _job(tmp_path, "1", [*common, "optimizer.lr=2"], None)
    _job(tmp_path, "2", [*common, "optimizer.lr=3"], {"best_val_f1": 0.7, "test_f1": 0.6})
    rows = write_sweep_summary(tmp_path, final=False)
    assert [(r["job"], r["status"], r["overrides"]) for r in rows] == [
        ("2", "completed", "optimizer.lr=3"),
        ("0", "completed", "optimizer.lr=1"),
        ("1", "pending", "optimizer.lr=2"),
    ]
    assert write_sweep_summary(tmp_path)[-1]["status"] == "failed"
    assert [r["job"] for r in _table(tmp_path)] == ["2", "0", "1"]

"""Sweeps: one directory per job, a ranked sweep table, and the Optuna search over four knobs
(nerlit's own sweeper in src/hydra_plugins: pruning, resuming, failed trials, the missing extra)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nerlit.experiments.sweep import group_rows, write_sweep_summary
from tests.conftest import REPO_ROOT, tiny_overrides


def _run(args: list[str], prelude: str = "", check: bool = True) -> subprocess.CompletedProcess:
    """``python -m nerlit.train ARGS``; ``prelude`` is Python run first in the same process."""
    command = ["-m", "nerlit.train"]
    if prelude:
        command = [
            "-c",
            f"{prelude}\nimport runpy\nrunpy.run_module('nerlit.train', run_name='__main__')",
        ]
    result = subprocess.run(
        [sys.executable, *command, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
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


def _search(gmb: Path) -> list[str]:
    # a batch size given on the command line would be fixed, not searched
    fixed = [o for o in tiny_overrides(gmb) if not o.startswith("data.batch_size=")]
    return [*fixed, "hparams_search=optuna"]


def _study(sweep: Path):
    optuna = pytest.importorskip("optuna")
    return optuna.load_study(study_name="nerlit", storage=f"sqlite:///{sweep / 'optuna.db'}")


@pytest.mark.slow  # a whole search: the Optuna sweeper's fast test is the failing-trial one
def test_optuna_search_maximizes_best_val_f1(gmb_file: Path, tmp_path: Path):
    sweep = tmp_path / "optuna"
    _run([*_search(gmb_file), "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={sweep}"])
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
    # the study in the sweep folder: one trial per job, each told its job's best val F1
    trials = _study(sweep).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    for trial in trials:
        assert trial.value == _summary(trial.user_attrs["job_dir"])["best_val_f1"]
    assert results["best_job_dir"] == rows[0]["run_dir"]


def _validated_epochs(job_dir: str | Path) -> list[str]:
    with open(Path(job_dir) / "csv" / "metrics.csv") as handle:
        return [row["epoch"] for row in csv.DictReader(handle) if row["val/f1"]]


@pytest.mark.slow
def test_optuna_pruner_stops_trials_after_a_validation(gmb_file: Path, tmp_path: Path):
    sweep = tmp_path / "pruned"
    _run(
        [
            *_search(gmb_file),
            "hydra.sweeper.n_trials=3",
            "trainer.max_epochs=2",
            # a lower bound no F1 reaches: every trial is pruned at its first validation
            "hydra.sweeper.pruner=null",
            "hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, lower: 1.5}",
            f"hydra.sweep.dir={sweep}",
        ]
    )
    trials = _study(sweep).trials
    assert [t.state.name for t in trials] == ["PRUNED"] * 3
    for trial in trials:
        assert list(trial.intermediate_values) == [0]  # val/f1 of validation 0, reported by the job
        assert trial.user_attrs["pruned_after_validation"] == 0
        # max_epochs=2, but the job stopped after its first epoch, then tested as a short run does
        assert _validated_epochs(trial.user_attrs["job_dir"]) == ["0"]
        assert _summary(trial.user_attrs["job_dir"])["test_f1"] is not None
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["trials"] == {"pruned": 3} and results["best_value"] is None


@pytest.mark.slow  # long subprocess test: make test-slow; the feature keeps a fast test
def test_optuna_search_continues_in_its_sweep_dir(gmb_file: Path, tmp_path: Path):
    sweep = tmp_path / "resumed"
    args = [*_search(gmb_file), f"hydra.sweep.dir={sweep}"]
    _run([*args, "hydra.sweeper.n_trials=2"])
    before = {job: (sweep / job / "summary.json").read_text() for job in ("0", "1")}
    _run([*args, "hydra.sweeper.n_trials=3"])
    trials = _study(sweep).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3  # one more trial, not three
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == ["0", "1", "2"]
    assert {job: (sweep / job / "summary.json").read_text() for job in before} == before
    assert trials[2].user_attrs["job_dir"] == str(sweep / "2")
    # the resumed sampler is not the first run's again (it would replay trial 0's draws)
    assert trials[2].params not in (trials[0].params, trials[1].params)
    assert {r["job"] for r in _table(sweep)} == {"0", "1", "2"}


def test_a_failing_trial_is_recorded_and_the_search_goes_on(gmb_file: Path, tmp_path: Path):
    optuna = pytest.importorskip("optuna")
    sweep = tmp_path / "failing"
    sweep.mkdir()
    # the study exists before the search: its first trial runs lr=-1 (AdamW raises), then 1e-3
    study = optuna.create_study(
        study_name="nerlit", storage=f"sqlite:///{sweep / 'optuna.db'}", direction="maximize"
    )
    study.enqueue_trial({"optimizer.lr": -1.0})
    study.enqueue_trial({"optimizer.lr": 1e-3})
    _run(
        [
            *tiny_overrides(gmb_file),
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=2",
            "optimizer.lr=choice(-1.0, 1e-3)",
            "scheduler.warmup_ratio=0.0",
            "model.dropout=0.1",
            f"hydra.sweep.dir={sweep}",
        ]
    )
    trials = _study(sweep).trials
    assert [(t.state.name, t.params) for t in trials] == [
        ("FAIL", {"optimizer.lr": -1.0}),
        ("COMPLETE", {"optimizer.lr": 1e-3}),
    ]
    assert {r["job"]: r["status"] for r in _table(sweep)} == {"0": "failed", "1": "completed"}
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_params"] == {"optimizer.lr": 1e-3}
    assert results["trials"] == {"fail": 1, "complete": 1}


# a finder that makes `import optuna` fail as it does where the extra is not installed
_HIDE_OPTUNA = """
import sys
class _NoOptuna:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("optuna", "optuna_integration"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _NoOptuna())
"""


def test_search_without_optuna_stops_with_the_install_command(tmp_path: Path):
    # the sweeper's own check (nerlit.train checks `hparams_search=optuna` before Hydra starts);
    # a job, if one ran, would fail at once on the missing file
    missing = tmp_path / "missing.csv"
    args = ["-m", "hydra/sweeper=optuna", "model=tiny", f"data.train_file={missing}"]
    args.append(f"hydra.sweep.dir={tmp_path}")
    result = _run(args, _HIDE_OPTUNA, check=False)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "needs the optuna extra" in last and 'pip install "nerlit[optuna]"' in last, last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "0").exists()


def test_interrupted_trials_fail_and_run_again(tmp_path: Path):
    optuna = pytest.importorskip("optuna")
    from hydra_plugins.nerlit_optuna_sweeper._impl import (
        next_job_number,
        recover_interrupted_trials,
    )

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    space = {"optimizer.lr": optuna.distributions.FloatDistribution(1e-5, 1e-3, log=True)}
    done = study.ask(space)
    done.set_user_attr("job", 0)
    study.tell(done, 0.5)
    killed = study.ask(space)  # a search killed while this trial's job ran
    killed.set_user_attr("job", 1)
    (tmp_path / "4").mkdir()  # a job folder the study does not know
    assert recover_interrupted_trials(study) == [killed.number]
    assert study.trials[killed.number].state.name == "FAIL"
    again = study.ask(space)
    assert again.params == killed.params and again.number == killed.number + 1
    assert next_job_number(study, tmp_path) == 5


def test_search_space_follows_hydras_override_grammar():
    pytest.importorskip("optuna")
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from hydra_plugins.nerlit_optuna_sweeper._impl import SearchSpace

    space = SearchSpace(
        [
            "optimizer.lr=tag(log, interval(1e-5, 2e-4))",
            "data.batch_size=choice(16, 32, 64)",
            "model.dropout=interval(0.0, 0.3)",
            "data.context=range(0, 9, 4)",
            "model.head=linear,crf",
            "data.batch_size=8",  # the command line fixes what `params` searched
            "+trainer.foo=a b",
        ]
    )
    assert space.distributions == {
        "optimizer.lr": FloatDistribution(1e-5, 2e-4, log=True),
        "model.dropout": FloatDistribution(0.0, 0.3),
        "data.context": IntDistribution(0, 8, step=4),  # Hydra's range excludes stop
        "model.head": CategoricalDistribution(["linear", "crf"]),
    }
    drawn = {"optimizer.lr": 1e-4, "model.dropout": 0.1, "data.context": 4, "model.head": "crf"}
    assert space.overrides(drawn) == [
        "data.batch_size=8",
        "+trainer.foo=a b",
        "optimizer.lr=0.0001",
        "model.dropout=0.1",
        "data.context=4",
        "model.head=crf",
    ]


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


def _row(job: str, overrides: str, status: str, val: float | None, test: float | None) -> dict:
    return {
        "job": job,
        "overrides": overrides,
        "status": status,
        "best_val_f1": val,
        "test_f1": test,
    }


def test_groups_average_seeds_of_each_setting_best_first_failed_jobs_counted_apart():
    rows = [
        _row("0", "seed=1 optimizer.lr=1", "completed", 0.50, 0.40),
        _row("1", "seed=1 optimizer.lr=2", "completed", 0.70, 0.60),
        _row("2", "seed=2 optimizer.lr=1", "completed", 0.60, 0.50),
        _row("3", "seed=2 optimizer.lr=2", "completed", 0.80, 0.70),
        _row("4", "+seed=3 optimizer.lr=2", "failed", None, None),
        _row("5", "seed=3 optimizer.lr=1", "completed", 0.70, None),  # ran with test=false
    ]
    groups = group_rows(rows)
    assert [g["overrides"] for g in groups] == ["optimizer.lr=2", "optimizer.lr=1"]
    best, second = groups
    assert (best["n"], best["n_failed"], best["seeds"], best["jobs"]) == (2, 1, "1,2,3", "1,3,4")
    assert best["val_f1_mean"] == pytest.approx(0.75)
    assert best["val_f1_std"] == pytest.approx(0.1 / 2**0.5)  # sample std of 0.7, 0.8
    assert best["test_f1_mean"] == pytest.approx(0.65)
    assert (second["n"], second["n_failed"]) == (3, 0)
    assert second["val_f1_mean"] == pytest.approx(0.6)
    assert second["val_f1_std"] == pytest.approx(0.1)
    assert second["test_f1_mean"] == pytest.approx(0.45)  # over the two tested jobs
    # one job has no spread; a group whose jobs all failed has no mean, and ranks last
    alone = group_rows(
        [
            _row("0", "seed=1 model.dropout=0", "failed", None, None),
            _row("1", "seed=1 model.dropout=0.1", "completed", 0.5, 0.4),
        ]
    )
    assert [(g["overrides"], g["n"], g["val_f1_std"]) for g in alone] == [
        ("model.dropout=0.1", 1, None),
        ("model.dropout=0", 0, None),
    ]


def test_grouped_tables_are_written_only_when_a_setting_repeats(tmp_path: Path):
    common = ["model=tiny"]
    results = {"0": 0.5, "1": 0.7, "2": 0.6, "3": None}
    for job, (seed, lr) in zip(results, [(1, 1), (1, 2), (2, 1), (2, 2)]):
        score = results[job]
        summary = None if score is None else {"best_val_f1": score, "test_f1": score - 0.1}
        _job(tmp_path, job, [*common, f"seed={seed}", f"optimizer.lr={lr}"], summary)
    write_sweep_summary(tmp_path)
    with open(tmp_path / "sweep_groups.csv") as handle:
        groups = list(csv.DictReader(handle))
    assert [(g["overrides"], g["n"], g["n_failed"]) for g in groups] == [
        ("optimizer.lr=2", "1", "1"),
        ("optimizer.lr=1", "2", "0"),
    ]
    assert float(groups[1]["val_f1_mean"]) == pytest.approx(0.55)
    grouped = (tmp_path / "sweep_groups.md").read_text()
    assert "| 1 | `optimizer.lr=2` | 1 | 1 | 0.7000 |  |" in grouped
    assert grouped in (tmp_path / "sweep.md").read_text()  # also a section of sweep.md
    # one job per setting: the job table says it all
    single = tmp_path / "single"
    _job(single, "0", ["optimizer.lr=1"], {"best_val_f1": 0.5, "test_f1": 0.4})
    _job(single, "1", ["optimizer.lr=2"], {"best_val_f1": 0.6, "test_f1": 0.5})
    write_sweep_summary(single)
    assert not (single / "sweep_groups.csv").exists()
    assert "seeds" not in (single / "sweep.md").read_text()


def test_multi_seed_sweep_writes_and_prints_the_grouped_table(gmb_file: Path, tmp_path: Path):
    sweep = tmp_path / "seeds"
    result = _run(
        [
            "-m",
            *tiny_overrides(gmb_file),
            "trainer.max_steps=2",  # validated once before stopping: every job has a val F1
            "seed=1,2",
            "optimizer.lr=1e-4,5e-3",
            f"hydra.sweep.dir={sweep}",
        ]
    )
    jobs = _table(sweep)
    assert len(jobs) == 4 and all(j["status"] == "completed" for j in jobs)
    with open(sweep / "sweep_groups.csv") as handle:
        groups = list(csv.DictReader(handle))
    assert sorted(g["overrides"] for g in groups) == ["optimizer.lr=0.0001", "optimizer.lr=0.005"]
    for group in groups:
        members = [j for j in jobs if j["overrides"].endswith(group["overrides"])]
        assert group["n"] == "2" and group["seeds"] == "1,2"
        vals = [float(j["best_val_f1"]) for j in members]
        assert float(group["val_f1_mean"]) == pytest.approx(sum(vals) / 2)
    means = [float(g["val_f1_mean"]) for g in groups]
    assert means == sorted(means, reverse=True)
    assert "settings over seeds (best mean val F1 first)" in result.stdout

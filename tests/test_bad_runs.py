"""Nothing lost, nothing silent: runs that shared a directory, configs that failed late
or trained nothing, unwritable run directories, sweeps ended by one job, W&B that hung, and a
resumed run that lost its logged history."""

from __future__ import annotations

import csv
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from nerlit.commands.train import train
from nerlit.config import CONFIG_DIR
from nerlit.errors import NerlitError
from tests.conftest import REPO_ROOT, compose_train, tiny_overrides

MISSING = "/nonexistent/corpus.csv"  # read before the checks ran, it would be the error


def _no_data(overrides: list[str]) -> list[str]:
    """Tiny overrides whose corpus does not exist: a config check must stop the run first."""
    return [*tiny_overrides(Path(MISSING)), *overrides]


def _compose(verb: str, overrides: list[str], out: Path):
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(f"{verb}.yaml", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    return cfg


# -- 1: two runs started in the same second -------------------------------------------------------

# imports first (slow), then both processes wait for each other and compose their config in the
# same second: the run directory named by ${now:} alone was one directory for both
_SAME_SECOND = """
import glob, math, os, runpy, sys, time
import nerlit.commands.train
barrier = sys.argv.pop(1)
open(os.path.join(barrier, f"ready-{os.getpid()}"), "w").close()
deadline = time.time() + 240
while len(ready := glob.glob(os.path.join(barrier, "ready-*"))) < 2 and time.time() < deadline:
    time.sleep(0.05)
time.sleep(max(0.0, math.ceil(max(map(os.path.getmtime, ready))) + 0.2 - time.time()))
runpy.run_module("nerlit.commands.train", run_name="__main__")
"""


def test_two_runs_started_in_the_same_second_get_two_complete_run_dirs(
    gmb_file: Path, tmp_path: Path
):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    args = [
        *tiny_overrides(gmb_file),
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
    ]
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _SAME_SECOND, str(barrier), *args, f"seed={seed}"],
            cwd=tmp_path,  # runs go to ./outputs/ of the directory nerlit runs in
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr[-3000:]
    run_dirs = sorted((tmp_path / "outputs" / "train" / "runs").iterdir())
    assert len(run_dirs) == 2, run_dirs
    assert run_dirs[0].name[:19] == run_dirs[1].name[:19], "started in the same second"
    seeds = set()
    for run_dir in run_dirs:
        for name in ("config.yaml", "summary.json", "metrics.json", "labels.json", "split.json"):
            assert (run_dir / name).is_file(), f"{run_dir} lacks {name}"
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        config = (run_dir / "config.yaml").read_text()
        assert f"output_dir: {run_dir.resolve()}\n" in config
        seeds.add(next(line for line in config.splitlines() if line.startswith("seed:")))
        with open(run_dir / "csv" / "metrics.csv") as handle:
            steps = [row["step"] for row in csv.DictReader(handle) if row["train/loss"]]
        assert steps == ["0", "1"], f"{run_dir}: one run's rows, not two runs' mixed"
    assert seeds == {"seed: 1", "seed: 2"}


def test_run_and_sweep_dir_names_end_in_a_random_suffix():
    first, second = (compose_train([], with_hydra=True).hydra for _ in range(2))
    for name in (first.run.dir, first.sweep.dir):
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_[0-9a-f]{6}", Path(name).name)
    assert first.run.dir != second.run.dir and first.sweep.dir != second.sweep.dir


# -- 2 and 3: values checked once, before any work ------------------------------------------------

BAD_VALUES = [
    ("data.batch_size=-4", "data.batch_size=-4: expected an integer >= 1"),
    ("trainer.max_epochs=abc", "trainer.max_epochs=abc: expected an integer >= -1"),
    ("optimizer.lr=fast", "optimizer.lr=fast: expected a number > 0"),
    ("data.tag_column=1.5", "data.tag_column=1.5: expected an integer"),
    ("data.batch_size=0", "data.batch_size=0: expected an integer >= 1"),
    ("data.max_length=3", "data.max_length=3: expected an integer >= 4"),
    ("data.encoding=utf-99", "data.encoding=utf-99: expected an encoding Python knows"),
    ("data.context=-5", "data.context=-5: expected an integer >= 0"),
    ("data.split_fractions=[0.5,0.5]", "data.split_fractions=[0.5,0.5]: expected 3 numbers"),
    ("+data.foo=1", "data.foo is not an option: data (NerDataModule) takes batch_size, "),
    ("trainer.precision=bf17", "trainer.precision=bf17: expected one of 64, 32, 16, "),
    ("+callbacks.model_checkpoint.monitr=x", "callbacks.model_checkpoint.monitr is not an"),
    # before: Lightning's Timer refused it after the corpus was read, in Hydra's 3 lines
    ("trainer.max_time=abc", 'trainer.max_time=abc: expected "DD:HH:MM:SS" (e.g. 00:12:00:00'),
    ("trainer.max_time=3600", "trainer.max_time=3600: expected"),
    ("trainer.max_time={hourz:1}", "or a mapping of days/hours/minutes/seconds (e.g. {hours:12})"),
    # before: trained nothing, tested the untrained model, exited 0
    ("trainer.max_epochs=0", "trainer.max_epochs=0 trains nothing and would test the untrained"),
    ("trainer.max_steps=0", "trainer.max_steps=0 trains nothing and would test the untrained"),
]


def test_a_column_name_for_a_conll_file_stops_the_run_before_any_work(tmp_path: Path):
    """A name is valid for a saved dataset's columns only; before, the reader refused it once
    the model was built and the corpus opened."""
    out = tmp_path / "run"
    overrides = _no_data(["data.format=conll", "data.tag_column=ner"])
    with pytest.raises(NerlitError) as caught:
        train(compose_train(overrides, out))
    assert "data.tag_column=ner: a CoNLL file's columns are numbered (0: the" in str(caught.value)
    assert not out.exists()


@pytest.mark.parametrize(("override", "message"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_config_value_stops_the_run_before_any_work(override, message, tmp_path: Path):
    out = tmp_path / "run"
    with pytest.raises(NerlitError) as caught:
        train(compose_train(_no_data([override]), out))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not out.exists(), "nothing written: the config was checked first"


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer.max_time=00:12:00:00"],
        ["trainer.max_time={hours:12,minutes:30}"],
        ["trainer.max_epochs=0", "train=false", "ckpt_path=run.ckpt"],  # test a checkpoint
        ["trainer.max_epochs=-1", "trainer.max_steps=100"],
    ],
)
def test_time_limits_and_testing_without_training_pass_the_checks(overrides: list[str]):
    from nerlit.config_checks import problems_of

    assert problems_of(compose_train(_no_data(overrides)), "train") == []


def test_all_problems_in_one_line(tmp_path: Path):
    with pytest.raises(NerlitError) as caught:
        train(compose_train(_no_data(["data.batch_size=0", "optimizer.lr=fast"]), tmp_path))
    assert "data.batch_size=0: expected" in str(caught.value)
    assert "; optimizer.lr=fast: expected" in str(caught.value)


def test_token_budget_is_checked_with_the_config(tmp_path: Path):
    with pytest.raises(NerlitError) as caught:
        train(compose_train(_no_data(["data.max_tokens=2"]), tmp_path))
    assert "data.max_tokens=2: expected an integer >= 4" in str(caught.value)


def test_negative_batch_size_stops_the_entry_point_with_one_line(gmb_file: Path, tmp_path: Path):
    """`nerlit train data.batch_size=-4` trained nothing, tested the untrained model, exited 0."""
    from nerlit.commands.train import _main

    run_dir = tmp_path / "run"
    cfg = compose_train([*tiny_overrides(gmb_file), "data.batch_size=-4"], run_dir)
    with pytest.raises(SystemExit) as stopped:
        _main(cfg)  # the Hydra app's task, as the command runs it (exit status 1, this line)
    assert stopped.value.code == "nerlit: data.batch_size=-4: expected an integer >= 1"
    assert not run_dir.exists()


@pytest.mark.parametrize(
    "user_named_it",
    [False, pytest.param(True, marks=pytest.mark.slow)],  # a subprocess each
)
def test_a_refused_run_leaves_no_empty_run_folder(tmp_path: Path, user_named_it: bool):
    """Hydra makes the run folder and its empty train.log before the config is checked: every
    mistyped value left ``outputs/train/runs/<time>/train.log`` behind. A folder the user named
    (``hydra.run.dir``) is theirs and stays."""
    named = [f"hydra.run.dir={tmp_path / 'mine'}"] if user_named_it else []
    result = subprocess.run(
        [sys.executable, "-m", "nerlit.train", "data.batch_size=-4", *named],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "nerlit: data.batch_size=-4: expected an integer >= 1"
    )
    assert not list(tmp_path.glob("outputs/train/runs/*")), "the refused run's folder stayed"
    assert (tmp_path / "mine").is_dir() == user_named_it


def test_evaluate_and_stats_check_the_keys_they_read_first(tmp_path: Path):
    from nerlit.commands.evaluate import evaluate
    from nerlit.commands.stats import main as stats

    overrides = ["ckpt_path=/nonexistent.ckpt", "batch_size=0", "split=dev", "data.tag_column=1.5"]
    with pytest.raises(NerlitError) as caught:  # not the missing checkpoint: the values first
        evaluate(_compose("evaluate", overrides, tmp_path / "evaluate"))
    assert sorted(str(caught.value).split("; ")) == [
        "batch_size=0: expected an integer >= 1",
        "data.tag_column=1.5: expected an integer (0: the first column, -1: the last), or a "
        "dataset's column name",
        "split=dev: expected one of train, val, test",
    ]
    cfg = _compose("stats", ["data=conll", f"data.train_file={MISSING}", "+data.foo=1"], tmp_path)
    with pytest.raises(SystemExit) as stopped:
        stats(cfg)
    assert str(stopped.value.code).startswith("nerlit: data.foo is not an option: data ")


# -- 4: unwritable run directories ----------------------------------------------------------------


def test_unwritable_run_dir_is_one_line_naming_it(monkeypatch, capsys):
    """`nerlit train hydra.run.dir=/proc/x` was a traceback from Hydra's mkdir."""
    from nerlit.commands.train import main

    monkeypatch.setattr(sys, "argv", ["nerlit train", "model=tiny", "hydra.run.dir=/proc/x"])
    # the command in this process (a subprocess costs seconds of imports): Hydra stops in the
    # output dir check, before its job starts; only its logging setup is left to undo
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with pytest.raises(SystemExit) as stopped:
            main()
    finally:
        root.handlers[:], root.level = handlers, level
    assert stopped.value.code == (  # Python prints it, the exit status is 1
        "nerlit: hydra.run.dir=/proc/x: cannot write there (No such file or directory); "
        "choose a directory you can write to (hydra.run.dir=DIR)"
    )
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("verb", ["train", "evaluate", "stats"])
def test_unwritable_output_dir_from_python_names_it(verb: str, tmp_path: Path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out = blocker / "run"  # a directory inside a file: not even root can make it
    expected = f"paths.output_dir={out}: cannot write there (Not a directory)"
    if verb == "stats":
        from nerlit.commands.stats import main as stats

        with pytest.raises(SystemExit, match=re.escape(f"nerlit: {expected}")):
            stats(_compose("stats", ["model=tiny", f"data.train_file={MISSING}"], out))
        return
    with pytest.raises(NerlitError, match=re.escape(expected)):
        if verb == "train":
            train(compose_train(tiny_overrides(Path(MISSING)), out))
        else:
            from nerlit.commands.evaluate import evaluate

            evaluate(_compose("evaluate", ["ckpt_path=x.ckpt"], out))


def test_unwritable_sweep_dir_is_refused_before_any_job(tmp_path: Path):
    from nerlit.experiments.run_dir import OutputDirCheck

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cfg = compose_train([f"hydra.sweep.dir={blocker}/sweep"], with_hydra=True)
    with pytest.raises(SystemExit, match=r"^nerlit: hydra.sweep.dir=.*a_file/sweep: cannot"):
        OutputDirCheck().on_multirun_start(config=cfg)


# -- 5: a sweep goes on after a job's user error --------------------------------------------------


def test_sweep_records_jobs_stopped_by_user_errors_and_goes_on(gmb_file: Path, tmp_path: Path):
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nerlit.train",
            "-m",
            *[o for o in tiny_overrides(gmb_file) if not o.startswith("data.batch_size")],
            "data.batch_size=0,-4",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Hydra ends a sweep with its first failed job's error; nerlit's is its one line (then
    # Hydra's "Set the environment variable HYDRA_FULL_ERROR=1 ..." hint)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "\nnerlit: data.batch_size=0: expected an integer >= 1\n" in result.stderr
    with open(sweep / "sweep.csv") as handle:
        rows = {row["job"]: row for row in csv.DictReader(handle)}
    assert {job: row["status"] for job, row in rows.items()} == {"0": "failed", "1": "failed"}
    assert rows["1"]["error"] == "nerlit: data.batch_size=-4: expected an integer >= 1"
    assert (sweep / "1" / "error.txt").read_text().startswith("nerlit: data.batch_size=-4")
    table = (sweep / "sweep.md").read_text()
    assert "| failed | `data.batch_size=0` |  |  | nerlit: data.batch_size=0: expected" in table


# -- 6: W&B without a network ---------------------------------------------------------------------

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"
UNREACHABLE = "http://192.0.2.1"  # TEST-NET-1: routed nowhere, on any machine


@pytest.fixture
def wandb_env(monkeypatch, tmp_path: Path) -> Path:
    """A user's W&B setup from scratch: an empty HOME, no WANDB_* variables."""
    for name in list(os.environ):
        if name.startswith("WANDB_") or name == "NETRC":
            monkeypatch.delenv(name)
    monkeypatch.setenv("WANDB_MODE", "")  # unset for nerlit; restored after the test
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def test_wandb_online_asked_without_network_stops_in_seconds(
    wandb_env: Path, monkeypatch, gmb_file: Path, tmp_path: Path
):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", UNREACHABLE)
    out = tmp_path / "run"
    started = time.monotonic()
    with pytest.raises(NerlitError) as caught:
        train(compose_train([*tiny_overrides(gmb_file), "logger=wandb"], out))
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert message.startswith(f"WANDB_MODE=online, but the W&B server {UNREACHABLE} is unreachable")
    assert "WANDB_MODE=offline" in message and "\n" not in message
    assert not (out / "checkpoints").exists(), "stopped before training"


def test_configured_wandb_without_network_logs_offline_with_one_warning(
    wandb_env: Path, monkeypatch, caplog
):
    from nerlit.experiments.wandb_mode import configure_wandb_mode

    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", UNREACHABLE)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="nerlit.experiments.wandb_mode"):
        assert configure_wandb_mode() == "offline"
        assert configure_wandb_mode() == "offline"  # train asks twice; one warning
    assert time.monotonic() - started < 15
    assert os.environ["WANDB_MODE"] == "offline"
    (warning,) = [r.getMessage() for r in caplog.records]
    assert (
        warning.startswith(f"W&B server {UNREACHABLE} is unreachable") and "wandb sync" in warning
    )


@pytest.mark.parametrize("configured_by", ["WANDB_BASE_URL", "wandb login --host"])
def test_self_hosted_wandb_login_counts_as_configured(
    configured_by: str, wandb_env: Path, monkeypatch
):
    import nerlit.experiments.wandb_mode as wandb_mode

    host = "https://wandb.example.org"
    (wandb_env / ".netrc").write_text(
        f"machine wandb.example.org\n  login user\n  password {FAKE_KEY}\n"
    )
    (wandb_env / ".netrc").chmod(0o600)
    if configured_by == "WANDB_BASE_URL":
        monkeypatch.setenv("WANDB_BASE_URL", host)
    else:  # what `wandb login --host` writes
        (wandb_env / ".config" / "wandb").mkdir(parents=True)
        (wandb_env / ".config" / "wandb" / "settings").write_text(f"[default]\nbase_url = {host}\n")
    asked = []
    monkeypatch.setattr(wandb_mode, "wandb_reachable", lambda url: asked.append(url))
    assert wandb_mode.configure_wandb_mode() == "online"
    assert asked == [host], "the configured host is the one checked"
    assert not os.environ["WANDB_MODE"], "not turned offline"


def test_unconfigured_wandb_is_offline_without_a_network_check(wandb_env: Path, monkeypatch):
    import wandb

    import nerlit.experiments.wandb_mode as wandb_mode

    target = wandb_mode.wandb_target()
    assert target.base_url == wandb.Settings().base_url and not target.has_credentials  # W&B's
    monkeypatch.setattr(wandb_mode, "wandb_reachable", lambda url: pytest.fail("checked"))
    assert wandb_mode.configure_wandb_mode() == "offline"


# -- 7: a resumed run keeps the history it logged -------------------------------------------------


def _csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def test_resumed_run_keeps_the_rows_logged_before_it_stopped(gmb_file: Path, tmp_path: Path):
    out = tmp_path / "run"
    train(compose_train(tiny_overrides(gmb_file), out))
    before = [r for r in _csv_rows(out) if r["train/loss"] or r["val/f1"]]
    resumed = [*tiny_overrides(gmb_file), "trainer.max_epochs=2", "ckpt_path=last"]
    train(compose_train(resumed, out))
    rows = _csv_rows(out)
    after = [r for r in rows if r["train/loss"] or r["val/f1"]]
    assert [r["epoch"] for r in after if r["val/f1"]] == ["0", "1"]
    keys = ("epoch", "step", "train/loss", "val/f1", "val/f1_best")
    assert [[r[k] for k in keys] for r in after[: len(before)]] == [
        [r[k] for k in keys] for r in before
    ], "the first run's rows, unchanged, then the resumed run's"
    steps = [r["step"] for r in after if r["train/loss"]]
    assert len(steps) == len(set(steps)) and len(steps) > len(
        [r for r in before if r["train/loss"]]
    )


# -- runs that trained or tested less than asked ---------------------------------------------------


def test_val_check_interval_longer_than_an_epoch_is_one_line(gmb_file: Path, tmp_path: Path):
    """Lightning's ValueError traceback, from configure_optimizers, after the model was built."""
    with pytest.raises(NerlitError) as caught:
        train(
            compose_train([*tiny_overrides(gmb_file), "trainer.val_check_interval=100"], tmp_path)
        )
    assert str(caught.value) == (
        "trainer.val_check_interval=100: an epoch has 4 training batches "
        "(trainer.limit_train_batches=4), so it would never validate; set "
        "trainer.val_check_interval to at most 4, or to a fraction of an epoch (0.25: four times "
        "an epoch), or set trainer.check_val_every_n_epoch=null to count 100 batches across epochs"
    )
    across = [
        "trainer.val_check_interval=6",
        "trainer.check_val_every_n_epoch=null",
        "trainer.max_epochs=2",
    ]
    assert train(compose_train([*tiny_overrides(gmb_file), *across], tmp_path / "across"))


def test_train_file_without_entities_says_so(tmp_path: Path):
    """Every tag O: transformers' "requires `num_labels > 1`" from deep inside the model's build."""
    from tests.conftest import make_sentences, write_gmb_csv

    plain = write_gmb_csv(tmp_path / "o.csv", [(w, ["O"] * len(w)) for w, _ in make_sentences(50)])
    with pytest.raises(NerlitError) as caught:
        train(compose_train(tiny_overrides(plain), tmp_path / "run"))
    assert str(caught.value) == (
        f"{plain}: train has no entities (every tag is O in its 40 sentences): nothing to learn; "
        "give a train file with entity tags"
    )


def test_nan_loss_stops_the_run_at_its_first_step(gmb_file: Path, tmp_path: Path):
    """optimizer.lr=1e6 trained on to NaN weights, tested them and reported F1 0, no warning."""
    out = tmp_path / "run"
    overrides = [*tiny_overrides(gmb_file), "optimizer.lr=1e6", "trainer.precision=32-true"]
    with pytest.raises(NerlitError) as caught:
        train(compose_train(overrides, out))
    message = str(caught.value)
    assert re.match(r"the training loss was (nan|inf) at step [1-3]: training diverged", message)
    assert "optimizer.lr=1e+06, trainer.precision=32-true" in message and "\n" not in message
    assert "lower optimizer.lr" in message
    assert not (out / "checkpoints").exists() and not (out / "summary.json").exists()


def test_partial_test_split_is_labelled_partial_everywhere(
    gmb_file: Path, tmp_path: Path, caplog, capsys
):
    """limit_test_batches scored 4 of 12 sentences; nothing said so, predictions.conll vanished."""
    import json

    out = tmp_path / "run"
    overrides = [
        *tiny_overrides(gmb_file),
        "trainer.limit_test_batches=1",
        "data.eval_batch_size=4",
    ]
    with caplog.at_level(logging.WARNING, logger="nerlit.evaluation.report"):
        summary = train(compose_train(overrides, out))
    assert summary["test_partial"] == "4 of 12 sentences scored (trainer.limit_test_batches=1)"
    assert summary["val_partial"] == "8 of 12 sentences scored (trainer.limit_val_batches=2)"
    assert json.loads((out / "summary.json").read_text())["test_partial"] == summary["test_partial"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["partial"] == {"sentences_scored": 4, "sentences": 12}
    assert (
        (out / "report.md")
        .read_text()
        .startswith("## gmb test, constrained decoding (partial: 4 of 12 sentences) (strict IOB2")
    )
    assert "gmb test, constrained decoding (partial: 4 of 12 sentences)" in capsys.readouterr().out
    assert not (out / "predictions.conll").exists()
    assert "predictions.conll not written: 4 of the 12 test sentences were scored" in caplog.text

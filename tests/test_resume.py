"""Resume: a run killed mid-training and resumed with ckpt_path=last ends as if never stopped."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from nerlit.commands.train import train
from nerlit.errors import NerlitError
from tests.conftest import REPO_ROOT, compose_train, tiny_overrides


class KillAtStep(L.Callback):
    """Dies like a preempted job (SIGKILL: no handler, no cleanup) before step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def _csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


#: metrics.csv columns that do not depend on the wall clock (throughput does)
CSV_KEYS = ("epoch", "step", "train/loss", "val/loss", "val/f1", "val/f1_best", "test/f1")


def _overrides(gmb_file: Path) -> list[str]:
    # two epochs of 4 steps at a rate that moves a tiny model; dropout draws from the RNGs
    return [
        *tiny_overrides(gmb_file),
        "trainer.max_epochs=2",
        "trainer.deterministic=true",
        "optimizer.lr=3e-3",
    ]


def test_killed_run_resumed_from_last_checkpoint_matches_an_uninterrupted_run(
    gmb_file: Path, tmp_path: Path
):
    straight = train(compose_train(_overrides(gmb_file), tmp_path / "straight"))

    run_dir = tmp_path / "interrupted"
    killed = subprocess.run(
        [
            sys.executable,
            "-m",
            "nerlit.train",
            *_overrides(gmb_file),
            f"hydra.run.dir={run_dir}",
            "+callbacks.kill._target_=tests.test_resume.KillAtStep",
            "+callbacks.kill.step=6",  # mid-epoch 2; the last checkpoint is from step 4
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert not (run_dir / "metrics.json").exists()
    logged_before_kill = [r for r in _csv_rows(run_dir) if r["train/loss"]]
    assert logged_before_kill, "the killed run logged training rows"

    resumed = train(compose_train([*_overrides(gmb_file), "ckpt_path=last"], run_dir))
    assert resumed["resumed_from"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert resumed["best_val_f1"] == straight["best_val_f1"]
    assert resumed["test_f1"] == straight["test_f1"]
    runs = (tmp_path / "straight", run_dir)
    metrics = [json.loads((d / "metrics.json").read_text()) for d in runs]
    assert metrics[0] == metrics[1]
    # the resumed run's last checkpoint carries on the uninterrupted run's step count
    assert resumed["best_checkpoint"].split("/")[-1] == straight["best_checkpoint"].split("/")[-1]
    # and its final weights are the uninterrupted run's, bit for bit
    weights = [
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for d in runs
    ]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    # metrics.csv holds the whole history, rows logged before the kill included, no step twice:
    # the uninterrupted run's rows (Lightning's CSVLogger alone deleted the file on resuming)
    rows = [[[r.get(k) for k in CSV_KEYS] for r in _csv_rows(d)] for d in runs]
    assert rows[1] == rows[0]
    pre_kill = {r["step"] for r in logged_before_kill if int(r["step"]) < 4}
    assert pre_kill and pre_kill <= {r["step"] for r in _csv_rows(run_dir) if r["train/loss"]}
    # val/f1_best continues across the resume (a persistent MaxMetric): the best of both epochs
    f1 = [float(r["val/f1"]) for r in _csv_rows(run_dir) if r["val/f1"]]
    best = [float(r["val/f1_best"]) for r in _csv_rows(run_dir) if r["val/f1_best"]]
    assert len(f1) == 2 and best == [f1[0], max(f1)]


def test_ckpt_path_last_without_a_checkpoint_names_the_fix(gmb_file: Path, tmp_path: Path):
    cfg = compose_train([*tiny_overrides(gmb_file), "ckpt_path=last"], tmp_path / "fresh")
    with pytest.raises(NerlitError, match="hydra.run.dir"):
        train(cfg)


def test_resuming_from_a_weights_only_best_checkpoint_names_last_ckpt(
    gmb_file: Path, tmp_path: Path
):
    first = train(compose_train(tiny_overrides(gmb_file), tmp_path / "first"))
    best = first["best_checkpoint"]
    cfg = compose_train([*tiny_overrides(gmb_file), f"ckpt_path={best}"], tmp_path / "again")
    with pytest.raises(NerlitError, match="weights only") as error:
        train(cfg)
    assert "last.ckpt" in str(error.value) and "\n" not in str(error.value)
    # testing it needs no optimizer state
    tested = train(
        compose_train(
            [*tiny_overrides(gmb_file), f"ckpt_path={best}", "train=false"], tmp_path / "test"
        )
    )
    assert tested["test_f1"] is not None

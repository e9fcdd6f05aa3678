"""What experimenters expect from a Lightning run: learning rate and gradient
norm curves, per-type validation F1, optional early stopping on val/f1, a validation (and a best
checkpoint) even when max_steps ends training inside the first epoch."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor

from nerlit.commands.train import build, train
from tests.conftest import compose_train, tiny_overrides

TYPES = ("geo", "org", "per", "tim")


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def _logged(rows: list[dict[str, str]], key: str) -> list[dict[str, str]]:
    return [row for row in rows if row.get(key)]


def test_learning_rate_and_gradient_norm_before_clipping_are_logged(gmb_file: Path, tmp_path: Path):
    out = tmp_path / "run"
    overrides = [
        *tiny_overrides(gmb_file),
        "trainer.log_every_n_steps=2",
        "trainer.gradient_clip_val=1e-6",  # the logged norm is the one before clipping
        "optimizer.lr=1e-3",
    ]
    train(compose_train(overrides, out))
    rows = _metrics(out)
    norms = _logged(rows, "train/grad_norm")
    # 4 steps, logged every 2nd: the norm is computed only when the loggers get it
    assert [int(row["step"]) for row in norms] == [1, 3]
    assert all(float(row["train/grad_norm"]) > 1e-3 for row in norms)
    lrs = _logged(rows, "lr-AdamW/pg1")
    assert [int(row["step"]) for row in lrs] == [1, 3]
    # linear warmup then decay: the logged rate follows the schedule, not a constant
    assert len({row["lr-AdamW/pg1"] for row in lrs}) == 2
    assert all(row["lr-AdamW/pg2"] == row["lr-AdamW/pg1"] for row in lrs)


def test_learning_rate_monitor_is_dropped_without_a_logger(gmb_file: Path, tmp_path: Path):
    # Lightning's monitor refuses to start when the trainer has no logger
    kinds = {}
    for logger in ("csv", "none"):
        cfg = compose_train([*tiny_overrides(gmb_file), f"logger={logger}"], tmp_path / logger)
        _, _, trainer = build(cfg)
        kinds[logger] = any(isinstance(c, LearningRateMonitor) for c in trainer.callbacks)
    assert kinds == {"csv": True, "none": False}


def test_per_type_validation_f1_is_logged_at_every_validation(gmb_file: Path, tmp_path: Path):
    out = tmp_path / "run"
    train(compose_train([*tiny_overrides(gmb_file), "trainer.max_epochs=2"], out))
    rows = _logged(_metrics(out), "val/f1")
    assert [row["epoch"] for row in rows] == ["0", "1"]
    for row in rows:
        per_type = {t: row.get(f"val/f1/{t}", "") for t in TYPES}
        assert all(value != "" for value in per_type.values()), per_type
        assert all(0.0 <= float(value) <= 1.0 for value in per_type.values())


def test_early_stopping_is_off_by_default(gmb_file: Path, tmp_path: Path):
    _, _, trainer = build(compose_train(tiny_overrides(gmb_file), tmp_path))
    assert not any(isinstance(c, EarlyStopping) for c in trainer.callbacks)


def test_early_stopping_option_stops_when_val_f1_stops_improving(gmb_file: Path, tmp_path: Path):
    out = tmp_path / "run"
    overrides = [
        *tiny_overrides(gmb_file),
        "callbacks=early_stopping",
        "callbacks.early_stopping.patience=1",
        # no F1 improves by a whole point: the second validation is one without a new best
        "callbacks.early_stopping.min_delta=1.0",
        "trainer.max_epochs=5",
    ]
    cfg = compose_train(overrides, out)
    assert cfg.callbacks.early_stopping.monitor == "val/f1"
    assert "model_checkpoint" in cfg.callbacks  # the default callbacks are kept
    summary = train(cfg)  # the config passes nerlit.config_checks's signature checks
    assert [row["epoch"] for row in _logged(_metrics(out), "val/f1")] == ["0", "1"]
    assert summary["best_checkpoint"] and Path(summary["best_checkpoint"]).is_file()


def test_max_steps_inside_the_first_epoch_still_validates_and_checkpoints(
    gmb_file: Path, tmp_path: Path
):
    out = tmp_path / "run"
    cfg = compose_train([*tiny_overrides(gmb_file), "trainer.max_steps=2"], out)
    assert cfg.trainer.limit_train_batches == 4  # debug=fast: the epoch is 4 steps long
    summary = train(cfg)
    assert summary["best_val_f1"] is not None
    assert summary["best_checkpoint"] and Path(summary["best_checkpoint"]).is_file()
    assert (out / "checkpoints" / "last.ckpt").is_file()
    # one validation, after the second (last) step: the CSV counts steps from 0
    assert Path(summary["best_checkpoint"]).name.startswith("epoch00-step2-")
    assert [row["step"] for row in _logged(_metrics(out), "val/f1")] == ["1"]
    assert max(int(row["step"]) for row in _logged(_metrics(out), "train/loss")) == 1


@pytest.mark.parametrize("steps", [4, 6])
def test_a_run_that_validates_anyway_validates_as_before(
    gmb_file: Path, tmp_path: Path, steps: int
):
    # max_steps at the epoch's end (4) or in the second epoch (6): no extra validation
    out = tmp_path / "run"
    overrides = [*tiny_overrides(gmb_file), f"trainer.max_steps={steps}", "trainer.max_epochs=3"]
    summary = train(compose_train(overrides, out))
    assert [row["step"] for row in _logged(_metrics(out), "val/f1")] == ["3"]
    assert Path(summary["best_checkpoint"]).name.startswith("epoch00-step4-")


def test_lightnings_echo_of_nerlits_own_settings_is_quiet_and_its_warnings_are_not(caplog):
    """Five `Trainer(limit_*=1.0)` lines, the model-summary note and a cloud-logger advert used
    to open every run; a warning still shows."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_info

    from nerlit.commands.train import quiet_lightning

    quiet_lightning()
    with caplog.at_level(logging.INFO):
        rank_zero_info("`Trainer(limit_val_batches=1.0)` was configured so 100% of the batches.")
        rank_zero_info("💡 Tip: For seamless cloud logging and experiment tracking, try ...")
        rank_zero_info("an info line nerlit does not know")
        logging.getLogger("lightning.pytorch.utilities.rank_zero").warning(
            "`Trainer(limit_val_batches=1.0)` was configured so ... a warning"
        )
    assert "was configured so 100%" not in caplog.text and "Tip" not in caplog.text
    assert "an info line nerlit does not know" in caplog.text
    assert "a warning" in caplog.text

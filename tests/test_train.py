"""The whole flow on a tiny random-init BERT: fit, test, run directory, checkpoints, seeds."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import torch

from nerlit.commands.train import build, train
from nerlit.models.module import NerModule
from tests.conftest import REPO_ROOT, compose_train, tiny_overrides


def test_cli_fast_run_writes_a_complete_run_directory(gmb_file: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nerlit.train",
            *tiny_overrides(gmb_file),
            f"hydra.run.dir={run_dir}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "micro avg (geo, gpe, org, per, tim)" in result.stdout
    # the model summary shows what was measured: parameters, not a column of zero FLOPs
    assert "Total params" in result.stdout and "FLOPs" not in result.stdout
    assert "LeafSpec" not in result.stderr and "not supported by the model summary" not in (
        result.stderr
    )
    for name in (
        "config.yaml",
        "metrics.json",
        "report.md",
        "summary.json",
        "split.json",
        "labels.json",
        "checkpoints/last.ckpt",
        "tokenizer/tokenizer.json",
        "curves.png",
        # the same files as nerlit evaluate writes for a split
        "predictions.conll",
        "confusion.json",
        "confusion.png",
        "errors.html",
        ".hydra/config.yaml",
    ):
        assert (run_dir / name).exists(), name
    (best,) = (run_dir / "checkpoints").glob("epoch*.ckpt")
    assert re.fullmatch(r"epoch00-step\d+-dev_f1_\d\.\d{4}\.ckpt", best.name), best.name
    # the whole path on one line when stdout is a pipe: copy-paste works
    assert f"best_checkpoint: {best}" in result.stdout.replace("\\", "/")
    # the optimizer state only where resuming needs it
    assert "optimizer_states" not in torch.load(best, weights_only=True)
    assert "optimizer_states" in torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["per_type"]) <= {"geo", "org", "per", "tim"}
    assert {"micro", "macro", "weighted", "reference"} <= set(metrics)
    split = json.loads((run_dir / "split.json").read_text())
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == 120
    with open(run_dir / "csv" / "metrics.csv") as handle:
        columns = set(next(csv.reader(handle)))
    assert {"train/loss", "val/loss", "val/f1", "val/precision", "val/recall"} <= columns
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_checkpoint"].startswith(str(run_dir))


def _fit(gmb_file: Path, out: Path, extra: list[str] = ()) -> tuple:
    cfg = compose_train([*tiny_overrides(gmb_file), "trainer.deterministic=true", *extra], out)
    summary = train(cfg)
    return cfg, summary


def test_checkpoint_reloads_with_identical_predictions(gmb_file: Path, tmp_path: Path):
    _, summary = _fit(gmb_file, tmp_path / "a")
    module, datamodule, _ = build(compose_train(tiny_overrides(gmb_file), tmp_path / "b"))
    restored = NerModule.load_from_checkpoint(summary["best_checkpoint"], weights_only=True)
    state = torch.load(summary["best_checkpoint"], weights_only=True)["state_dict"]
    module.load_state_dict(state)
    module.eval(), restored.eval()
    batch = next(iter(datamodule.test_dataloader()))
    with torch.no_grad():
        expected = module(batch["input_ids"], batch["attention_mask"])
        got = restored(batch["input_ids"], batch["attention_mask"])
    assert torch.equal(expected, got)
    assert restored.labels == datamodule.labels
    # the trained weights differ from a fresh init, so the comparison above means something
    fresh, _, _ = build(compose_train(tiny_overrides(gmb_file), tmp_path / "c"))
    fresh.eval()
    with torch.no_grad():
        assert not torch.equal(fresh(batch["input_ids"], batch["attention_mask"]), got)


def test_seeded_cpu_runs_repeat(gmb_file: Path, tmp_path: Path):
    _, first = _fit(gmb_file, tmp_path / "one")
    _, second = _fit(gmb_file, tmp_path / "two")
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert one == two
    assert first["best_val_f1"] == second["best_val_f1"]
    _, third = _fit(gmb_file, tmp_path / "three", ["seed=7"])
    three = json.loads((tmp_path / "three" / "metrics.json").read_text())
    assert three != one, "a different seed should change something"


def test_progress_bar_is_tqdm_when_output_is_not_a_terminal(
    gmb_file: Path, tmp_path: Path, monkeypatch
):
    from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar

    cfg = compose_train([*tiny_overrides(gmb_file), "trainer.enable_progress_bar=true"], tmp_path)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    _, _, trainer = build(cfg)
    assert isinstance(trainer.progress_bar_callback, TQDMProgressBar)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    _, _, trainer = build(cfg)
    assert isinstance(trainer.progress_bar_callback, RichProgressBar)


def test_a_full_disk_is_one_line_naming_the_file(gmb_file: Path, tmp_path: Path, monkeypatch):
    """ENOSPC while the run folder is written was a traceback; now one line names the file and
    says what is incomplete (no real disk is filled: the write is made to fail)."""
    import errno
    import os

    import pytest

    from nerlit.commands.cli import exit_on_user_error

    real = Path.write_text

    def write_text(self, data, *args, **kwargs):  # named as pathlib's, as a traceback shows it
        if self.name == "metrics.json":
            with self.open("w") as handle:  # the file exists, half written, as on a full disk
                handle.write(data[:10])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    cfg = compose_train(tiny_overrides(gmb_file), tmp_path / "run")
    with pytest.raises(SystemExit) as stop:
        exit_on_user_error(train)(cfg)
    assert str(stop.value) == (
        f"nerlit: could not write {tmp_path / 'run' / 'metrics.json'}: No space left on device. "
        f"The outputs written from then on are missing or incomplete; free some space and run "
        f"again"
    )

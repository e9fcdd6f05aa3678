"""nerlit train rerun=RUN: a run again from the config it ran with, into a new folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import nerlit
from nerlit.errors import ConfigError
from tests.conftest import REPO_ROOT, tiny_overrides


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nerlit.train", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow  # two training subprocesses; rerun's fast test is the in-process one below
def test_a_rerun_gives_the_same_test_f1_to_the_last_digit(gmb_file: Path, tmp_path: Path):
    first, again = tmp_path / "first", tmp_path / "again"
    ran = _train(*tiny_overrides(gmb_file), "trainer.deterministic=true", f"hydra.run.dir={first}")
    assert ran.returncode == 0, ran.stderr[-2000:]
    rerun = _train(f"rerun={first}", f"hydra.run.dir={again}")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    before = json.loads((first / "summary.json").read_text())
    after = json.loads((again / "summary.json").read_text())
    assert after["test_f1"] == before["test_f1"] and after["best_val_f1"] == before["best_val_f1"]
    # the new run wrote into its own folder, and its saved config reruns the same way
    assert after["best_checkpoint"].startswith(str(again))
    saved = yaml.safe_load((again / ".hydra" / "config.yaml").read_text())
    assert saved["model"] == yaml.safe_load((first / ".hydra" / "config.yaml").read_text())["model"]
    assert saved["rerun"] is None


def test_changes_beside_rerun_apply_and_a_preset_choice_is_refused(gmb_file: Path, tmp_path: Path):
    first = nerlit.fit([*tiny_overrides(gmb_file), f"hydra.run.dir={tmp_path / 'first'}"])
    changed = nerlit.fit(
        {"rerun": str(first.dir), "seed": 7, "hydra.run.dir": str(tmp_path / "seed7")}
    )
    config = yaml.safe_load((changed.dir / "config.yaml").read_text())
    assert config["seed"] == 7 and config["data"]["train_file"] == str(gmb_file)
    refused = f"hydra.run.dir={tmp_path / 'refused'}"  # not a folder in the checkout
    with pytest.raises(ConfigError, match="not a preset choice .*model=bert-base"):
        nerlit.fit([f"rerun={first.dir}", "model=bert-base", refused])
    with pytest.raises(ConfigError, match=r"rerun=\S*nowhere: no such folder"):
        nerlit.fit([f"rerun={tmp_path / 'nowhere'}", refused])

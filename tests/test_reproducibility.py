"""A run directory says what made it: composed config, package versions, git commit, data split.

(That ``seed`` + ``trainer.deterministic=true`` repeat a CPU run's metrics exactly is
``tests/test_train.py::test_seeded_cpu_runs_repeat``; resuming repeats them too, see
``tests/test_resume.py``.)
"""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from nerlit.commands.train import train
from nerlit.experiments.provenance import git_state
from tests.conftest import REPO_ROOT, compose_train, tiny_overrides


def test_run_directory_records_config_versions_commit_and_split(gmb_file: Path, tmp_path: Path):
    out = tmp_path / "run"
    train(compose_train([*tiny_overrides(gmb_file), "seed=7"], out))
    config = OmegaConf.load(out / "config.yaml")
    assert config.seed == 7 and config.model.config_overrides.hidden_size == 32
    assert config.data.train_file == str(gmb_file)
    environment = json.loads((out / "environment.json").read_text())
    for package in ("torch", "lightning", "transformers", "hydra-core", "seqeval", "nerlit"):
        assert environment["packages"][package] == metadata.version(package)
    split = json.loads((out / "split.json").read_text())
    ids = split["train"] + split["val"] + split["test"]
    assert len(ids) == len(set(ids)) == 120, "each sentence in exactly one split"
    if (REPO_ROOT / ".git").exists():
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        assert environment["git"]["commit"] == head
        assert isinstance(environment["git"]["dirty"], bool)


def test_git_state_outside_a_checkout_is_none(tmp_path: Path):
    assert git_state(tmp_path) is None


@pytest.mark.skipif(not (REPO_ROOT / ".git").exists(), reason="not a git checkout")
def test_git_state_leaves_the_index_alone():
    index = REPO_ROOT / ".git" / "index"
    before = index.stat().st_mtime_ns if index.exists() else None
    assert git_state()["commit"]
    assert (index.stat().st_mtime_ns if index.exists() else None) == before

"""Every option of every config group composes; bad overrides fail with Hydra's clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException

from nerlit.config import CONFIG_DIR
from tests.conftest import REPO_ROOT, compose_train

GROUPS = sorted(p.name for p in Path(CONFIG_DIR).iterdir() if p.is_dir())
OPTIONS = [(g, f.stem) for g in GROUPS for f in sorted((Path(CONFIG_DIR) / g).glob("*.yaml"))]


def test_groups_are_the_documented_ones():
    expected = {"data", "model", "optimizer", "scheduler", "trainer", "logger", "callbacks"}
    assert expected | {"paths", "hydra", "experiment", "debug"} <= set(GROUPS)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(group: str, option: str):
    cfg = compose_train([f"{group}={option}"], with_hydra=True)
    assert cfg.data._target_.endswith("NerDataModule")
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    if group in ("data", "model", "optimizer", "scheduler", "trainer"):
        assert cfg[group] is not None


def test_runs_go_under_outputs_and_keep_the_working_directory():
    hydra_cfg = compose_train([], with_hydra=True).hydra
    assert hydra_cfg.run.dir.startswith(str(REPO_ROOT / "outputs" / "train" / "runs") + "/")
    assert hydra_cfg.sweep.dir.startswith(str(REPO_ROOT / "outputs" / "train" / "multiruns") + "/")
    assert hydra_cfg.job.chdir is False


def test_issue_example_composes():
    cfg = compose_train(["model=bert-base", "trainer.gradient_clip_val=1.0"])
    assert cfg.model.name == "bert-base-cased"
    assert cfg.trainer.gradient_clip_val == 1.0


def test_model_hub_ids():
    names = {
        m: compose_train([f"model={m}"]).model.name for m in ("minilm", "bert-base", "roberta-base")
    }
    assert names["minilm"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert names["bert-base"] == "bert-base-cased"
    assert names["roberta-base"].endswith("roberta-base")


def test_unknown_option_is_a_clear_error():
    with pytest.raises(MissingConfigException, match="bert-huge"):
        compose_train(["model=bert-huge"])


def test_unknown_key_is_a_clear_error():
    with pytest.raises(ConfigCompositionException, match="no_such_key"):
        compose_train(["trainer.no_such_key=1"])

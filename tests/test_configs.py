"""Every option of every config group composes; bad overrides fail with Hydra's clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException

from nerlit.commands.cli import suggest_keys
from nerlit.commands.train import train
from nerlit.config import CONFIG_DIR
from tests.conftest import REPO_ROOT, compose_train, tiny_overrides

GROUPS = sorted(p.name for p in Path(CONFIG_DIR).iterdir() if p.is_dir())
#: train's groups (tagger is predict's and evaluate's)
OPTIONS = [
    (g, f.stem)
    for g in GROUPS
    if g != "tagger"
    for f in sorted((Path(CONFIG_DIR) / g).glob("*.yaml"))
]
EXPERIMENTS = sorted(f.stem for f in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


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


def test_a_model_preset_brings_its_own_learning_rate_and_every_override_still_wins():
    """MiniLM's 1e-4 (conf/optimizer/for_model/minilm.yaml) is the default model's; presets
    without such a file keep adamw.yaml's 5e-5; the command line and experiments come later."""
    lr = {m: compose_train([f"model={m}"]).optimizer.lr for m in ("minilm", "bert-base", "tiny")}
    assert lr == {"minilm": 1e-4, "bert-base": 5e-5, "tiny": 5e-5}
    assert compose_train([]).optimizer.lr == 1e-4  # make train's model
    assert compose_train(["optimizer.lr=5e-5"]).optimizer.lr == 5e-5
    assert compose_train(["optimizer=adamw", "model=minilm"]).optimizer.lr == 1e-4


def test_unknown_option_is_a_clear_error():
    with pytest.raises(MissingConfigException, match="bert-huge"):
        compose_train(["model=bert-huge"])


def test_unknown_key_is_a_clear_error():
    with pytest.raises(ConfigCompositionException, match="no_such_key"):
        compose_train(["trainer.no_such_key=1"])


def test_a_mistyped_key_gets_the_nearest_known_key():
    assert suggest_keys("train", ["model=tiny", "trainer.max_step=10", "seed=3"]) == [
        "trainer.max_step is not a key of nerlit train; did you mean trainer.max_steps?"
    ]
    # a key of the chosen group counts as known; nothing near: no guess
    assert suggest_keys("train", ["data=conll", "data.token_column=1", "trainer.zzz=1"]) == []
    assert suggest_keys("predict", ["chunk_sise=4"]) == [
        "chunk_sise is not a key of nerlit predict; did you mean chunk_size?"
    ]


def test_the_command_prints_the_suggestion_after_hydras_message(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "nerlit.train", "trainer.max_step=10"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "nerlit: trainer.max_step is not a key of nerlit train; did you mean trainer.max_steps?"
    )
    assert not (tmp_path / "outputs").exists()


#: common Trainer keys and a non-default value each: all settable without `+`
TRAINER_KEYS = {
    "limit_train_batches": 0.5,
    "limit_val_batches": 3,
    "limit_test_batches": 0.25,
    "limit_predict_batches": 2,
    "val_check_interval": 0.5,
    "check_val_every_n_epoch": 2,
    "accumulate_grad_batches": 4,
    "max_steps": 100,
    "min_steps": 10,
    "min_epochs": 1,
    "max_time": "00:01:00:00",
    "gradient_clip_val": 0.5,
    "gradient_clip_algorithm": "value",
    "log_every_n_steps": 10,
    "num_sanity_val_steps": 0,
    "deterministic": True,
    "benchmark": True,
    "fast_dev_run": True,
    "profiler": "simple",
    "overfit_batches": 0.1,
    "detect_anomaly": True,
    "enable_checkpointing": False,
}


def test_common_trainer_keys_are_set_without_plus():
    from nerlit.config_checks import problems_of

    cfg = compose_train([f"trainer.{key}={value}" for key, value in TRAINER_KEYS.items()])
    assert {key: cfg.trainer[key] for key in TRAINER_KEYS} == TRAINER_KEYS
    assert problems_of(cfg, "train") == []


def test_trainer_config_keeps_lightnings_defaults():
    """The keys added for `trainer.KEY=VALUE` change nothing: a Trainer built from the config
    behaves as Lightning's default Trainer on each of them."""
    from hydra.utils import instantiate
    from lightning.pytorch import Trainer

    cfg = compose_train(["paths.output_dir=/tmp/unused", "trainer.accelerator=cpu"])
    ours = instantiate(cfg.trainer, logger=False, enable_progress_bar=False)
    theirs = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    attributes = [
        "limit_train_batches",
        "limit_val_batches",
        "limit_test_batches",
        "limit_predict_batches",
        "val_check_interval",
        "check_val_every_n_epoch",
        "accumulate_grad_batches",
        "max_steps",
        "min_steps",
        "num_sanity_val_steps",
        "log_every_n_steps",
        "fast_dev_run",
        "overfit_batches",
        "gradient_clip_algorithm",
        "profiler",
    ]

    def seen(trainer: Trainer, name: str):
        value = getattr(trainer, name, None)
        if value is None:  # fit-loop and profiler settings live on the loop and the profiler
            value = getattr(trainer.fit_loop, name, None)
        return type(value).__name__ if name == "profiler" else value

    assert {a: seen(ours, a) for a in attributes} == {a: seen(theirs, a) for a in attributes}
    assert ours.fit_loop.min_epochs is None


@pytest.mark.parametrize("trainer", ["default", "cpu", "gpu", "ddp"])
@pytest.mark.parametrize("extra", [[], ["callbacks=early_stopping"], ["callbacks=none"]])
def test_debug_fast_composes_and_validates_with_every_trainer_preset(
    trainer: str, extra: list[str]
):
    from nerlit.config_checks import problems_of

    cfg = compose_train([f"trainer={trainer}", "debug=fast", *extra])
    assert cfg.trainer.limit_train_batches == 4 and cfg.trainer.num_sanity_val_steps == 0
    assert problems_of(cfg, "train") == []


@pytest.mark.parametrize("verb", ["predict", "evaluate"])
def test_predict_and_evaluate_take_the_tagger_options_from_one_group(verb: str):
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(f"{verb}.yaml", overrides=["ckpt_path=m.ckpt", "decode=argmax"])
        tagger = compose("tagger/default.yaml")
    shared = set(tagger) - {"tagger"}
    assert {"decode", "batch_size", "max_length", "stride", "precision", "backend"} <= shared
    assert cfg.decode == "argmax" and cfg.ckpt_path == "m.ckpt"
    assert all(key in cfg for key in shared)


@pytest.mark.parametrize(
    "key, bad",
    [("batch_size", 0), ("max_length", 2), ("pad_to_multiple_of", "x"), ("decode", "foo")],
)
def test_a_tagger_option_is_judged_by_one_rule_from_python_and_from_an_override(key, bad):
    """``Tagger.load(batch_size=0)`` and ``nerlit predict batch_size=0`` print the same line:
    the rule is TaggerOptions', and the config check reads it from there."""
    from nerlit.config_checks import problems_of
    from nerlit.errors import OptionError
    from nerlit.inference.tagger import TaggerOptions

    with pytest.raises(OptionError) as raised:
        TaggerOptions(**{key: bad})
    overrides = ["ckpt_path=m.ckpt", "input=in.txt", "output=o.jsonl", f"{key}={bad}"]
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("predict.yaml", overrides=overrides)
    assert problems_of(cfg, "predict") == [str(raised.value)]


@pytest.mark.parametrize("key, bad", [("scheme", "bio"), ("format", "xml"), ("encoding", "nope")])
def test_a_reading_option_is_judged_by_one_rule_from_python_and_from_an_override(key, bad):
    from nerlit.config_checks import problems_of
    from nerlit.data.corpus import ReadOptions
    from nerlit.errors import DataError

    with pytest.raises(DataError) as raised:
        ReadOptions(**{key: bad})
    assert problems_of(compose_train([f"data.{key}={bad}"]), "train") == [str(raised.value)]


@pytest.mark.parametrize("verb", ["predict", "evaluate"])
def test_every_tagger_option_is_one_the_verb_reads(verb: str, caplog):
    """An option added to ``tagger/default.yaml`` but not to the verb's schema would be warned
    about as unread on every run (``concurrent_batches`` once was)."""
    from nerlit.config_checks import problems_of

    overrides = ["ckpt_path=m.ckpt", "concurrent_batches=2"]
    if verb == "predict":
        overrides += ["input=in.txt", "output=out.jsonl"]
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(f"{verb}.yaml", overrides=overrides)
    with caplog.at_level("WARNING", logger="nerlit.config_checks"):
        assert problems_of(cfg, verb) == []
    assert "does not read" not in caplog.text
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        bad = compose(f"{verb}.yaml", overrides=[*overrides, "concurrent_batches=0"])
    assert any("concurrent_batches" in problem for problem in problems_of(bad, verb))
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        bad = compose(f"{verb}.yaml", overrides=[*overrides, "pad_to_multiple_of=0"])
    assert any("pad_to_multiple_of=0" in problem for problem in problems_of(bad, verb))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_with_a_tiny_model(experiment: str, gmb_file: Path, tmp_path: Path):
    """As lightning-hydra-template does: each recipe composes and trains, here on a tiny model
    and a few batches of a fixture corpus (the recipe's own data preset is replaced)."""
    overrides = [f"experiment={experiment}", *tiny_overrides(gmb_file), "data=gmb", "logger=none"]
    cfg = compose_train(overrides, tmp_path)
    assert cfg.tags and cfg.optimizer.lr == 1.0e-4  # the recipe's own settings are in
    summary = train(cfg)
    assert summary["best_checkpoint"] and summary["test_f1"] is not None


def test_shell_completion_completes_verbs_then_each_verbs_keys(tmp_path: Path):
    """The script ``nerlit -sc install=bash`` prints, run by bash as a tab press would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nerlit").write_text(f'#!/bin/sh\nexec {sys.executable} -m nerlit "$@"\n')
    (bin_dir / "nerlit").chmod(0o755)
    presses = {
        "nerlit ev": "evaluate",
        "nerlit train trainer.max_s": "trainer.max_steps=",
        "nerlit train model=bert-b": "model=bert-base",
        "nerlit predict chunk_": "chunk_size=",
    }
    script = ['eval "$(nerlit train -sc install=bash)"']
    for line in presses:
        words = line.split()
        script += [
            f'COMP_LINE="{line}"; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}',
            '_nerlit_complete; echo "${COMPREPLY[*]}"',
        ]
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == list(presses.values())

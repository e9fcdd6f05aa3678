"""nerlit.fit / nerlit.evaluate: the CLI's runs, from Python, through the public names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import nerlit
import nerlit.api
from nerlit.errors import ConfigError, NerlitError
from tests.conftest import REPO_ROOT, make_sentences, tiny_overrides, write_gmb_csv


def _as_dict(overrides: list[str]) -> dict:
    return dict(item.split("=", 1) for item in overrides)


@pytest.fixture(scope="module")
def gmb_file_module(tmp_path_factory) -> Path:
    return write_gmb_csv(tmp_path_factory.mktemp("gmb") / "gmb.csv", make_sentences(120))


@pytest.fixture(scope="module")
def run(gmb_file_module: Path, tmp_path_factory) -> nerlit.Run:
    out = tmp_path_factory.mktemp("api-run")
    overrides = {
        **_as_dict(tiny_overrides(gmb_file_module)),
        "trainer.deterministic": True,
        "hydra.run.dir": str(out / "run"),
    }
    return nerlit.fit(overrides)


def test_fit_writes_the_run_folder_the_cli_writes_and_returns_its_scores(run: nerlit.Run):
    assert run.dir.name == "run"
    for name in ("config.yaml", "metrics.json", "summary.json", "checkpoints/last.ckpt"):
        assert (run.dir / name).exists(), name
    assert (run.dir / "train.log").read_text()  # nerlit's log lines, as the CLI keeps them
    summary = json.loads((run.dir / "summary.json").read_text())
    assert run.metrics["test_f1"] == summary["test_f1"]
    assert run.best_checkpoint is not None and run.best_checkpoint.parent == run.dir / "checkpoints"
    assert run.test_scores["micro"]["f1"] == pytest.approx(summary["test_f1"])


def test_the_runs_tagger_and_evaluate_give_the_cli_scores(run: nerlit.Run, tmp_path: Path):
    tagger = run.tagger()
    assert tagger.labels and isinstance(tagger.predict(["Obama visited Paris ."])[0], list)
    scores = nerlit.evaluate(run.best_checkpoint, {"hydra.run.dir": str(tmp_path / "api")})
    assert scores["micro"]["f1"] == pytest.approx(run.metrics["test_f1"])
    # the verb behind it lives in nerlit.commands: the name stays the function after a call
    assert nerlit.evaluate is nerlit.api.evaluate
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "nerlit.evaluate",
            f"ckpt_path={run.best_checkpoint}",
            f"hydra.run.dir={tmp_path / 'cli'}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    on_the_cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert on_the_cli["micro"] == scores["micro"]


def test_errors_are_one_line_nerlit_errors_not_exits(gmb_file_module: Path, tmp_path: Path):
    with pytest.raises(ConfigError) as error:
        nerlit.fit(["model=tiny", "trainer.max_step=3"])
    assert "did you mean trainer.max_steps?" in str(error.value)
    assert "\n" not in str(error.value)
    bad = [*tiny_overrides(gmb_file_module), f"hydra.run.dir={tmp_path}", "data.batch_size=0"]
    with pytest.raises(NerlitError, match="batch_size"):
        nerlit.fit(bad)
    with pytest.raises(ConfigError, match="list of strings"):
        nerlit.fit("model=tiny")


def test_a_refused_fit_leaves_no_empty_run_folder(
    gmb_file_module: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)  # the default run folder: ./outputs/train/runs/<time>
    with pytest.raises(NerlitError, match="batch_size"):
        nerlit.fit([*tiny_overrides(gmb_file_module), "data.batch_size=0"])
    assert not list(tmp_path.glob("outputs/train/runs/*"))
    kept = tmp_path / "kept"
    kept.mkdir()  # a folder that was there before the call is the caller's
    with pytest.raises(NerlitError, match="batch_size"):
        nerlit.fit([*tiny_overrides(gmb_file_module), f"hydra.run.dir={kept}", "data.batch_size=0"])
    assert kept.is_dir()


def test_dict_values_keep_their_types_through_hydras_grammar():
    from nerlit.api import as_overrides

    assert as_overrides(
        {"a": 3, "b": True, "c": None, "d": "x y", "e": [1, "p q"], "f": "it's", "g": 1e-4}
    ) == ["a=3", "b=true", "c=null", "d='x y'", "e=[1,'p q']", "f='it\\'s'", "g=0.0001"]

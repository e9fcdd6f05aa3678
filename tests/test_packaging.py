"""nerlit as a user installs it: a built wheel, installed away from the checkout, run from an empty
directory of the user's own, with the `nerlit` command and `python -m nerlit.<verb>`.

The wheel is built from a copy of the checkout's source (a stale ``build/`` folder in the checkout
must not leak into it), or taken from ``NERLIT_WHEEL`` when CI built it already (``make wheel``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CASED_TOKENIZER, REPO_ROOT, make_sentences, write_conll

SOURCE = ("pyproject.toml", "README.md", "src", "conf")


def _build_wheel(tmp: Path) -> Path:
    if os.environ.get("NERLIT_WHEEL"):
        return Path(os.environ["NERLIT_WHEEL"]).resolve()
    source = tmp / "source"
    source.mkdir()
    for name in SOURCE:
        copy = shutil.copytree if (REPO_ROOT / name).is_dir() else shutil.copy2
        kwargs = (
            {"ignore": shutil.ignore_patterns("__pycache__", "*.egg-info")}
            if copy is shutil.copytree
            else {}
        )
        copy(REPO_ROOT / name, source / name, **kwargs)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(tmp / "dist"), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp / "dist").glob("nerlit-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """The wheel installed into a folder of its own; the environment that makes it the nerlit."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(tmp)
    site = tmp / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NERLIT_")}
    # a user's settings are left out, except where the corpus cache goes: never the tester's home
    env.update(
        PYTHONPATH=str(site),
        HF_HUB_OFFLINE="1",
        NERLIT_SITE=str(site),
        NERLIT_CACHE_DIR=str(tmp / "cache"),
    )
    return env


def _run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_the_wheel_ships_the_configs_and_runs_from_its_own_location(installed, tmp_path: Path):
    code = "import nerlit, nerlit.config as c; print(nerlit.__file__); print(c.CONFIG_DIR)"
    module, config_dir = _run(installed, tmp_path, sys.executable, "-c", code).stdout.split()
    site = installed["NERLIT_SITE"]
    assert module.startswith(site) and config_dir == str(Path(site, "nerlit", "conf").resolve())
    shipped = {p.relative_to(config_dir).as_posix() for p in Path(config_dir).rglob("*.yaml")}
    in_repo = {
        p.relative_to(REPO_ROOT / "conf").as_posix() for p in (REPO_ROOT / "conf").rglob("*.yaml")
    }
    assert shipped == in_repo


def test_fit_evaluate_predict_in_an_empty_user_directory(installed, tmp_path: Path):
    """Relative paths resolve against the user's directory, and every output lands under it."""
    work = tmp_path / "project"
    work.mkdir()
    write_conll(work / "train.conll", make_sentences(60))
    write_conll(work / "test.conll", make_sentences(16, seed=5))
    (work / "texts.txt").write_text("Angela Merkel visited Paris on Monday.\n\nNATO met Obama.\n")
    nerlit = [sys.executable, "-m", "nerlit"]
    fit = _run(
        installed,
        work,
        *nerlit,
        "train",
        "model=tiny",
        f"model.pretrained={CASED_TOKENIZER}",
        "debug=fast",
        "data=conll",
        "data.train_file=train.conll",
        "data.test_file=test.conll",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "logger=csv",
    )
    (run,) = (work / "outputs" / "train" / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert "Run finished" in fit.stdout and summary["test_f1"] is not None
    ckpt = Path(summary["best_checkpoint"])
    assert ckpt.is_file() and ckpt.is_relative_to(work)
    split = json.loads((run / "split.json").read_text())
    assert split["sources"]["train"] == str(work / "train.conll")

    evaluated = _run(
        installed,
        work,
        sys.executable,
        "-m",
        "nerlit.evaluate",
        f"ckpt_path={ckpt.relative_to(work)}",
        "data=conll",
        "data.train_file=train.conll",
        "data.test_file=test.conll",
    )
    assert json.loads(evaluated.stdout.strip().splitlines()[-1])["micro_f1"] == pytest.approx(
        summary["test_f1"], abs=1e-4
    )
    (evaluation,) = (work / "outputs" / "evaluate" / "runs").iterdir()
    assert (evaluation / "metrics.json").is_file()

    _run(
        installed,
        work,
        *nerlit,
        "predict",
        f"ckpt_path={ckpt.relative_to(work)}",
        "input=texts.txt",
        "output=entities.jsonl",
    )
    records = [json.loads(line) for line in (work / "entities.jsonl").read_text().splitlines()]
    assert [r["text"] for r in records] == [
        "Angela Merkel visited Paris on Monday.",
        "",
        "NATO met Obama.",
    ]
    assert {p.name for p in work.iterdir()} == {
        "train.conll",
        "test.conll",
        "texts.txt",
        "entities.jsonl",
        "outputs",
    }


def test_the_nerlit_command_lists_its_verbs_and_each_verb_its_own_options(installed, tmp_path):
    script = Path(installed["NERLIT_SITE"], "bin", "nerlit")
    listing = _run(installed, tmp_path, sys.executable, str(script), "--help").stdout
    for verb in ("train", "evaluate", "predict", "export", "stats"):
        assert f"\n  {verb} " in listing
    predict_help = _run(
        installed, tmp_path, sys.executable, str(script), "predict", "--help"
    ).stdout
    assert "ckpt_path: ???" in predict_help and "chunk_size" in predict_help
    assert "optimizer" not in predict_help and "scheduler" not in predict_help
    train_help = _run(installed, tmp_path, sys.executable, str(script), "train", "--help").stdout
    assert "optimizer: adamw" in train_help
    wrong = subprocess.run(
        [sys.executable, str(script), "tran"], env=installed, capture_output=True, text=True
    )
    assert wrong.returncode != 0 and "unknown command 'tran'" in wrong.stderr


def test_the_readmes_architecture_names_every_folder_and_module_of_the_package():
    """The README's layout block has a line for each folder and top-level module of
    ``src/nerlit`` (the verbs' ``python -m`` shims as ``<verb>.py``): a new one must be named."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("\nsrc/nerlit/\n") : readme.index("\nsrc/hydra_plugins/")]
    named = {line.split()[0] for line in block.splitlines()[2:] if line.startswith("  ")}
    package = REPO_ROOT / "src" / "nerlit"
    verbs = {p.stem for p in (package / "commands").glob("*.py")} - {"__init__", "cli"}
    entries = {
        f"{p.name}/" if p.is_dir() else p.name
        for p in package.iterdir()
        if not p.name.startswith("_") and (p.is_dir() or p.suffix == ".py")
    }
    entries = {e for e in entries if e.removesuffix(".py") not in verbs} | {"<verb>.py"}
    assert named == entries, f"README lists {sorted(named)}, src/nerlit has {sorted(entries)}"

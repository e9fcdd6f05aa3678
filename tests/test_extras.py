"""Optional extras: core nerlit imports none of them, and choosing a feature whose extra is missing
stops with one line naming the pip command. The extras are hidden from a subprocess by an import
blocker installed through ``sitecustomize`` (the dev environment has them all)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_overrides

OPTIONAL = (
    "onnx",
    "onnxruntime",
    "onnxscript",
    "tensorboard",
    "optuna",
    "optuna_integration",
    "matplotlib",
    "hydra_plugins.hydra_submitit_launcher",
)

#: the distributions behind them: their metadata is hidden too (libraries check it)
DISTRIBUTIONS = (
    "onnx",
    "onnxruntime",
    "onnxscript",
    "tensorboard",
    "optuna",
    "optuna_integration",
    "matplotlib",
    "hydra_submitit_launcher",
)


def blocker(modules: tuple[str, ...], distributions: tuple[str, ...]) -> str:
    """A ``sitecustomize.py`` that makes ``modules`` (and their submodules) and the metadata of
    ``distributions`` look uninstalled in the subprocess that loads it."""
    return f"""
import sys

def _blocked(name):
    return any(name == m or name.startswith(m + ".") for m in {modules!r})

class _Hide:
    \"\"\"Wraps an import finder: blocked packages are not found, as if not installed.\"\"\"

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        return None if _blocked(name) else self.finder.find_spec(name, path, target)

    def find_distributions(self, *args, **kwargs):
        found = getattr(self.finder, "find_distributions", None)
        for dist in found(*args, **kwargs) if found else ():
            if dist.metadata["Name"].lower().replace("-", "_") not in {distributions!r}:
                yield dist

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)

sys.meta_path[:] = [_Hide(finder) for finder in sys.meta_path]
"""


BLOCKER = blocker(OPTIONAL, DISTRIBUTIONS)


@pytest.fixture
def without_extras(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a subprocess without the extras; it runs in the test's own folder,
    so a run it starts writes ``./outputs`` there, not into the checkout."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").mkdir()
    (tmp_path / "blocker" / "sitecustomize.py").write_text(BLOCKER)
    paths = [str(tmp_path / "blocker"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_the_blocker_hides_the_extras(without_extras):
    result = _run(without_extras, "-c", "import matplotlib")
    assert result.returncode != 0 and "No module named 'matplotlib'" in result.stderr


def test_core_modules_import_no_optional_package(without_extras):
    modules = (
        "nerlit.commands.train",
        "nerlit.commands.evaluate",
        "nerlit.commands.predict",
        "nerlit.commands.export",
        "nerlit.commands.stats",
        "nerlit.commands.compare",
        "nerlit.commands.cli",
        "nerlit.api",
        "nerlit.evaluation.curves",
        "nerlit.inference.tagger",
        "nerlit.inference.backends",
        "nerlit.inference.onnx_export",
        "nerlit.evaluation.confusion",
    )
    loaded = f"sorted(set({OPTIONAL!r}) & set(sys.modules))"
    code = f"import sys, {', '.join(modules)}; print({loaded})"
    result = _run(without_extras, "-c", code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("choice", "extra"),
    [
        ("logger=tensorboard", "tensorboard"),
        # one training subprocess each (~8 s): the rest run in make test-slow
        pytest.param("logger=many", "tensorboard", marks=pytest.mark.slow),
        pytest.param("hparams_search=optuna", "optuna", marks=pytest.mark.slow),
        pytest.param("hydra/launcher=slurm", "slurm", marks=pytest.mark.slow),
    ],
)
def test_a_missing_extra_stops_with_the_install_command(without_extras, gmb_file, choice, extra):
    overrides = [o for o in tiny_overrides(gmb_file) if not o.startswith("logger=")]
    result = _run(without_extras, "-m", "nerlit.train", *overrides, choice)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("nerlit: ") and f'pip install "nerlit[{extra}]"' in last
    assert "Traceback" not in result.stderr


def test_confusion_png_is_skipped_with_a_hint_or_required_on_request(without_extras, tmp_path):
    code = (
        "import sys; from nerlit.evaluation.confusion import write_confusion\n"
        "gold = [['B-per', 'O']]; pred = [['B-per', 'O']]\n"
        f"write_confusion(gold, pred, {str(tmp_path)!r})\n"
        "print('auto ok')\n"
        f"write_confusion(gold, pred, {str(tmp_path)!r}, plot=True)\n"
    )
    result = _run(without_extras, "-c", code)
    assert "auto ok" in result.stdout
    assert (tmp_path / "confusion.json").is_file() and not (tmp_path / "confusion.png").exists()
    assert 'pip install "nerlit[plots]"' in result.stderr
    assert result.returncode != 0 and "MissingExtraError" in result.stderr

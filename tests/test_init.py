"""nerlit init: a starter config folder that trains as written, and never overwrites silently."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nerlit
from nerlit.commands.init import write_starter
from nerlit.errors import OutputPathError
from tests.conftest import make_sentences, write_conll


def test_the_starter_trains_from_a_users_folder(tmp_path: Path, monkeypatch):
    result = subprocess.run(
        [sys.executable, "-m", "nerlit", "init"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "nerlit train --config-dir configs experiment=my_experiment" in result.stdout
    assert sorted(p.name for p in (tmp_path / "configs").rglob("*.yaml")) == [
        "my_corpus.yaml",
        "my_experiment.yaml",
    ]
    assert not (tmp_path / "outputs").exists()
    sentences = make_sentences(90)
    (tmp_path / "data").mkdir()
    for name, part in (("train", sentences[:60]), ("dev", sentences[60:75])):
        write_conll(tmp_path / "data" / f"{name}.txt", part)
    write_conll(tmp_path / "data" / "test.txt", sentences[75:])
    models = Path(os.environ.get("NERLIT_MODELS_DIR", "../shared/models")).resolve()
    monkeypatch.setenv("NERLIT_MODELS_DIR", str(models))  # the tiny model's tokenizer
    monkeypatch.chdir(tmp_path)
    run = nerlit.fit(
        ["experiment=my_experiment", "model=tiny", "debug=fast", "trainer.accelerator=cpu"],
        config_dir="configs",
    )
    config = (run.dir / "config.yaml").read_text()
    assert "name: my_corpus" in config and "gradient_clip_val: 1.0" in config
    assert str(tmp_path / "data" / "train.txt") in config or "data/train.txt" in config
    assert run.metrics["test_f1"] is not None
    assert run.dir.is_relative_to(tmp_path / "outputs")


def test_init_refuses_to_replace_the_starter_unless_asked(tmp_path: Path):
    written = write_starter(tmp_path / "configs")
    written[0].write_text("# mine\n")
    with pytest.raises(OutputPathError, match="already exist.*overwrite=true"):
        write_starter(tmp_path / "configs")
    assert written[0].read_text() == "# mine\n"
    write_starter(tmp_path / "configs", overwrite=True)
    assert "my_corpus" in written[0].read_text()

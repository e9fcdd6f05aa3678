"""Checkpoints are read with torch's restricted unpickler: a planted payload never runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from nerlit.errors import ModelLoadError, NerlitError
from nerlit.experiments.resume import resolve_checkpoint
from nerlit.inference.tagger import Tagger
from nerlit.models.checkpoint import load_checkpoint_file, read_checkpoint, read_data_record
from nerlit.models.network import NerNetwork
from tests.conftest import tiny_checkpoint


class _Payload:
    """Unpickling this calls ``os.system``: what a hostile ``.ckpt`` would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def hostile(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real nerlit checkpoint with a payload added beside its keys, and the payload's marker."""
    checkpoint = torch.load(tiny_checkpoint(tmp_path_factory), weights_only=True)
    marker = tmp_path / "payload-ran"
    checkpoint["hyper_parameters"]["note"] = _Payload(marker)
    path = tmp_path / "hostile.ckpt"
    torch.save(checkpoint, path)
    return path, marker


READERS = {
    "read_checkpoint": read_checkpoint,
    "read_data_record (evaluate, compare)": read_data_record,
    "NerNetwork.load": NerNetwork.load,
    "Tagger.load (predict, evaluate, serve)": Tagger.load,
    "resume (train ckpt_path=)": lambda path: resolve_checkpoint(str(path), path.parent),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_a_checkpoint_carrying_code_is_refused_before_it_runs(hostile, reader: str):
    path, marker = hostile
    with pytest.raises(NerlitError) as error:
        READERS[reader](path)
    assert not marker.exists(), "the payload ran"
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    assert "could run code" in message and "posix.system" in message


def test_the_checkpoints_nerlit_writes_load_with_the_restricted_unpickler(tmp_path_factory):
    best = tiny_checkpoint(tmp_path_factory)
    checkpoint = read_checkpoint(best)
    assert checkpoint["hyper_parameters"]["labels"] and checkpoint["state_dict"]
    assert checkpoint["nerlit_tokenizer_files"]  # bytes survive the restricted unpickler
    # so does everything resume needs, in last.ckpt (the best one keeps the weights only)
    assert read_checkpoint(best.parent / "last.ckpt")["optimizer_states"]


def test_a_file_that_is_no_checkpoint_is_one_line_not_a_security_warning(tmp_path: Path):
    text = tmp_path / "train.csv"
    text.write_text("Sentence #,Word,POS,Tag\n")
    with pytest.raises(ModelLoadError) as error:
        load_checkpoint_file(text)
    assert "cannot be read as a checkpoint" in str(error.value)
    assert "run code" not in str(error.value)

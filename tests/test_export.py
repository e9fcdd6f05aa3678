"""Export: a standard Hugging Face folder; the pipeline loads it offline and agrees with Tagger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForTokenClassification, pipeline

from nerlit import Tagger
from nerlit.inference.hf_export import export_huggingface
from nerlit.models.module import NerModule
from tests.conftest import tiny_checkpoint

# words that are single pre-tokens of the BERT tokenizer, so the pipeline's words are ours
TEXTS = [
    "Angela Merkel visited Berlin with NATO on Monday .",
    "John Smith left New York , said Reuters on Friday .",
    "Maria criticized Obama",
    "Paris",
    "Obama left Iraq with the United Nations on Monday and Maria visited Paris on Friday .",
]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def exported(ckpt: Path, tmp_path_factory) -> Path:
    return export_huggingface(ckpt, tmp_path_factory.mktemp("export") / "model")


def test_folder_is_standard(exported: Path, ckpt: Path):
    config = json.loads((exported / "config.json").read_text())
    labels = torch.load(ckpt, weights_only=True)["hyper_parameters"]["labels"]
    assert config["id2label"] == {str(i): label for i, label in enumerate(labels)}
    assert config["label2id"] == {label: i for i, label in enumerate(labels)}
    assert config["architectures"] == ["BertForTokenClassification"]
    assert (exported / "model.safetensors").is_file()
    assert (exported / "tokenizer.json").is_file()
    # safetensors writes 0600; an exported folder's files are all readable alike
    modes = {f.name: oct(f.stat().st_mode & 0o777) for f in exported.iterdir() if f.is_file()}
    assert len(set(modes.values())) == 1, modes


def test_exported_weights_compute_what_the_checkpoint_computes(exported: Path, ckpt: Path):
    module = NerModule.load_from_checkpoint(ckpt, weights_only=True, map_location="cpu").eval()
    hf = AutoModelForTokenClassification.from_pretrained(exported).eval()
    ids = torch.tensor([[101, 1188, 1110, 170, 2774, 119, 102, 0]])
    mask = torch.tensor([[1] * 7 + [0]])
    with torch.no_grad():
        assert torch.allclose(module(ids, mask), hf(input_ids=ids, attention_mask=mask).logits)


def test_pipeline_gives_the_same_entities_as_tagger(exported: Path, ckpt: Path):
    """Both label a word by its first subword; argmax decoding groups words as the pipeline does.

    batch_size=1 on both sides: no padding, so no rounding difference can flip a near-tie of
    this barely trained model; batching itself is checked in test_inference.py.
    """
    hf = pipeline("token-classification", model=str(exported), aggregation_strategy="first")
    found = hf(TEXTS, batch_size=1)
    theirs = [[(e["start"], e["end"], e["entity_group"]) for e in row] for row in found]
    their_scores = [[float(e["score"]) for e in row] for row in found]
    assert any(theirs), "the comparison needs some entities"
    for source in (ckpt, exported):
        tagger = Tagger.load(source, decode="argmax", batch_size=1, precision="fp32")
        predicted = tagger.predict(TEXTS)
        assert [[(e.start, e.end, e.label) for e in row] for row in predicted] == theirs
        scores = [[e.score for e in row] for row in predicted]
        assert scores == [pytest.approx(row, abs=1e-5) for row in their_scores]


def test_two_exports_racing_into_one_new_folder_leave_one_whole_and_refuse_the_other(
    ckpt: Path, tmp_path: Path, monkeypatch
):
    """Both found the folder free at their start; the second to finish moved the first one's
    model aside and deleted it, and both exited 0."""
    import threading

    from nerlit.errors import OutputPathError
    from nerlit.inference import outputs

    both_checked = threading.Barrier(2, timeout=60)
    check = outputs.check_fresh_folder

    def check_then_wait(*args, **kwargs):
        target = check(*args, **kwargs)
        both_checked.wait()  # each export has found the folder free before either writes
        return target

    monkeypatch.setattr(outputs, "check_fresh_folder", check_then_wait)
    target = tmp_path / "model"
    errors: list[BaseException] = []

    def export() -> None:
        try:
            export_huggingface(ckpt, target)
        except BaseException as error:  # noqa: BLE001 - collected for the assertions
            errors.append(error)

    threads = [threading.Thread(target=export) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(errors) == 1, errors
    assert isinstance(errors[0], OutputPathError)
    assert str(errors[0]) == (
        f"output_dir={target} already exists (written by another export meanwhile); nothing of "
        f"this export was kept: pass overwrite=true to replace it"
    )
    assert Tagger.load(target).predict(TEXTS[:1])  # the winner's folder, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "no temporary folder left"


def test_a_full_disk_during_export_is_one_line_and_exports_nothing(
    ckpt: Path, tmp_path: Path, monkeypatch
):
    import errno
    import os

    from nerlit.errors import OutputPathError

    real = Path.write_text

    def write_text(self, data, *args, **kwargs):  # named as pathlib's, as a traceback shows it
        if self.name == "README.md":  # the model card, written after the weights
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    target = tmp_path / "model"
    with pytest.raises(OutputPathError) as error:
        export_huggingface(ckpt, target)
    assert str(error.value) == (
        f"output_dir={target}: the export could not be written while writing README.md (No "
        f"space left on device); nothing was exported (model was not created): free some space "
        f"and run again"
    )
    assert list(tmp_path.iterdir()) == [], "no temporary folder left"

"""Model resolution: local copies are found by hub id; with no network it fails fast and clearly."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModel

from nerlit.models import pretrained
from nerlit.models.network import NerNetwork
from nerlit.models.pretrained import ModelNotFoundError, resolve_pretrained
from tests.conftest import CASED_TOKENIZER, REPO_ROOT, SHARED


def test_finds_local_copy_by_last_part_of_hub_id():
    resolved = resolve_pretrained(
        "sentence-transformers/all-MiniLM-L6-v2", None, str(SHARED / "models")
    )
    assert Path(resolved.location) == (SHARED / "models" / "all-MiniLM-L6-v2").resolve()


def test_explicit_directory_wins():
    resolved = resolve_pretrained("bert-base-cased", str(CASED_TOKENIZER), "/nonexistent")
    assert resolved.location == str(CASED_TOKENIZER.resolve())


def test_explicit_directory_must_be_a_model(tmp_path: Path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_pretrained("bert-base-cased", str(tmp_path), None)


def test_offline_error_names_model_places_and_fix(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(pretrained, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ModelNotFoundError) as error:
        resolve_pretrained("bert-base-cased", None, str(tmp_path / "models"))
    message = str(error.value)
    assert "'bert-base-cased'" in message
    assert str(tmp_path / "models" / "bert-base-cased") in message
    assert "Hugging Face cache" in message
    assert "model.pretrained=" in message


def test_cli_fails_fast_without_network(tmp_path: Path):
    """As a user would meet it: `python -m nerlit.train model=bert-base` on this offline machine."""
    env = {"PATH": "/usr/bin:/bin", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "nerlit.train", "model=bert-base", f"hydra.run.dir={tmp_path}/run"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "nerlit: Cannot load model 'bert-base-cased'" in result.stderr
    assert "Traceback" not in result.stderr
    assert "model.pretrained=DIR" in result.stderr


@pytest.mark.parametrize("stored", [torch.float16, torch.bfloat16])
def test_an_encoder_stored_in_half_precision_trains_in_fp32(tmp_path: Path, stored: torch.dtype):
    """transformers 5 keeps a checkpoint's stored dtype unless told: Hub encoders saved in fp16
    or bf16 would be fine-tuned with half-precision master weights."""
    config = AutoConfig.from_pretrained(
        CASED_TOKENIZER,
        num_hidden_layers=1,
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=64,
    )
    AutoModel.from_config(config).to(stored).save_pretrained(tmp_path)
    saved = AutoConfig.from_pretrained(tmp_path).to_dict()
    assert saved["dtype"] == str(stored).removeprefix("torch.")
    labels = ["O", "B-per", "I-per"]
    for network in (
        NerNetwork.build(saved, labels, pretrained=str(tmp_path)),  # fine-tuning its weights
        NerNetwork.build(saved, labels),  # random init from its config (a checkpoint's rebuild)
    ):
        assert {p.dtype for p in network.parameters()} == {torch.float32}


def test_only_unexpected_missing_weights_are_reported(tmp_path: Path, capfd, caplog):
    """A fresh classifier is every fine-tune's start: no LOAD REPORT table for it. An encoder
    layer the checkpoint lacks is a real problem: one warning naming it."""
    small = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64)
    config = AutoConfig.from_pretrained(CASED_TOKENIZER, num_hidden_layers=1, **small)
    AutoModel.from_config(config).save_pretrained(tmp_path)
    saved = AutoConfig.from_pretrained(tmp_path).to_dict()
    labels = ["O", "B-per", "I-per"]
    with caplog.at_level(logging.WARNING):
        NerNetwork.build(saved, labels, pretrained=str(tmp_path))
    assert "LOAD REPORT" not in capfd.readouterr().err + caplog.text
    assert "lacks" not in caplog.text
    deeper = {**saved, "num_hidden_layers": 2}
    with caplog.at_level(logging.WARNING):
        NerNetwork.build(deeper, labels, pretrained=str(tmp_path))
    assert "lacks 16 encoder weights, which start random: bert.encoder.layer.1." in caplog.text

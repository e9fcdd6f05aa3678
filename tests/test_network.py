"""The network's GPU-facing choices: attention kernels, compiling in place, padded batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend

from nerlit.commands.train import train
from nerlit.errors import NerlitError
from nerlit.models.network import NerNetwork, attention_kernels
from tests.conftest import CASED_TOKENIZER, compose_train, tiny_checkpoint, tiny_overrides

LABELS = ["O", "B-per", "I-per"]


def _tiny(attention: str = "auto") -> NerNetwork:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(
        CASED_TOKENIZER, num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
        intermediate_size=64,
    )  # fmt: skip
    torch.manual_seed(0)
    return NerNetwork.build(config.to_dict(), LABELS, attention=attention).eval()


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(1000, 2000, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # padding: the mask every length-grouped batch carries
    return ids, mask


def test_auto_attention_leaves_out_cudnn_on_a_gpu_and_is_torchs_choice_on_a_cpu():
    assert attention_kernels("auto", "cpu") is None
    assert SDPBackend.CUDNN_ATTENTION not in attention_kernels("auto", "cuda")
    assert attention_kernels("cudnn", "cuda") == [SDPBackend.CUDNN_ATTENTION]
    with pytest.raises(NerlitError, match="model.attention='fast'"):
        attention_kernels("fast", "cuda")


def test_every_kernel_choice_computes_the_same_logits():
    ids, mask = _inputs()
    reference = _tiny("auto")(ids, mask)
    math = _tiny("auto")
    math.attention = "math"
    assert torch.allclose(math(ids, mask), reference, atol=1e-5)


def test_a_kernel_the_device_lacks_is_one_line_naming_the_key():
    network = _tiny("cudnn")  # no cuDNN attention on a CPU
    with pytest.raises(NerlitError) as error:
        network(*_inputs())
    assert "model.attention=cudnn" in str(error.value) and "\n" not in str(error.value)


def test_the_choice_travels_with_the_checkpoint(tmp_path_factory):
    network = NerNetwork.load(tiny_checkpoint(tmp_path_factory))
    assert network.attention == "auto"


def test_compiling_in_place_keeps_the_checkpoint_keys():
    network = _tiny()
    keys = list(network.state_dict())
    network.compile(mode="default")  # compiles lazily, at the first forward
    assert list(network.state_dict()) == keys


@pytest.mark.parametrize("multiple", [8, 64])
def test_padding_to_a_multiple_changes_no_score(gmb_file: Path, tmp_path: Path, multiple: int):
    """The same checkpoint tested with exact and with rounded padding: the same predictions."""
    checkpoint = tiny_checkpoint_for(gmb_file, tmp_path)
    results = []
    for pad in ("null", str(multiple)):
        overrides = [
            *tiny_overrides(gmb_file),
            "train=false",
            f"ckpt_path={checkpoint}",
            f"data.pad_to_multiple_of={pad}",
            "logger=none",
        ]
        summary = train(compose_train(overrides, tmp_path / f"test-{pad}"))
        predictions = (tmp_path / f"test-{pad}" / "predictions.conll").read_text()
        results.append((summary["test_f1"], predictions))
    assert results[0] == results[1]


def tiny_checkpoint_for(gmb_file: Path, tmp_path: Path) -> Path:
    summary = train(compose_train([*tiny_overrides(gmb_file), "logger=none"], tmp_path / "run"))
    return Path(summary["best_checkpoint"])


def test_on_a_gpu_the_mask_goes_in_prepared_so_transformers_never_reads_it(monkeypatch):
    """transformers checks a 2D mask for padding with ``.all()``, a host sync per forward on a
    GPU; the prepared 4D mask skips that check and gives the same logits."""
    network = _tiny()
    ids, mask = _inputs()
    reads = []
    real_all = torch.Tensor.all
    monkeypatch.setattr(
        torch.Tensor, "all", lambda self, *a, **k: reads.append(1) or real_all(self, *a, **k)
    )
    plain = network.model(input_ids=ids, attention_mask=network.encoder_mask(mask, False)).logits
    assert reads, "the 2D mask is read (the premise)"
    reads.clear()
    prepared = network.model(input_ids=ids, attention_mask=network.encoder_mask(mask, True)).logits
    assert not reads
    assert torch.equal(plain, prepared)

"""``nerlit export format=onnx``: the network as an ONNX graph for ONNX Runtime, fp32 or int8.

The folder holds ``model.onnx`` (inputs ``input_ids``, ``attention_mask`` and, for a model
trained with casing features, ``casing_ids``; output ``logits [batch, tokens, labels]``; batch
and sequence axes dynamic), ``config.json`` (labels and nerlit's settings, no weights, no local
paths), ``nerlit.safetensors`` with a CRF head's transitions (decoding is nerlit's, outside the
graph), the tokenizer and a model card. ``Tagger.load(folder)`` runs it with nerlit's windows,
decoder and spans.

Exporter: ``torch.onnx.export(..., dynamo=True)``, the torch.export-based exporter (the default
since torch 2.9; it needs ``onnxscript``). The TorchScript exporter (``dynamo=False``) still
works on torch 2.13 with transformers 5, but it is deprecated, it traces Python: transformers'
mask and attention code branch on tensor values (TracerWarnings in ``masking_utils`` and
``sdpa_attention``), so its graph is right only as far as the example inputs took the branches a
real batch takes. The dynamo exporter captures the program with its shapes symbolic. Measured on
the tiny test model and on MiniLM: the dynamo graph matches torch to 1e-7 on batches of other
sizes and paddings, and runs as fast in ONNX Runtime as the TorchScript one (both get ORT's
LayerNorm/GELU/MatMul fusions); it takes longer to export (~15 s for MiniLM vs ~3 s).

Every export is checked right away: ONNX Runtime and torch run the same random batches (other
sizes, padded rows) and must agree to a tolerance, else :class:`~nerlit.errors.ExportError`.

int8 (``quantize="int8"``) is ONNX Runtime's dynamic quantization, restricted on purpose: only
the encoder's linear layers (each ``MatMul`` with a constant weight: attention Q/K/V and output,
feed-forward in and out) get int8 weights, per output channel. Kept in fp32: the embeddings
(word, position, type and casing ``Gather``: a lookup table costs no compute, and int8 rows
blur rare words), the attention score products (activation x activation, no weight), LayerNorm
and softmax, and the classifier, whose logits decide each tag directly (an error there flips
near-tie labels where an error in a hidden layer averages out). ``reduce_range`` (7-bit
weights, default on) avoids the u8 x s8 saturation of AVX2/AVX-512 CPUs without VNNI that ONNX
Runtime documents. The accuracy cost is measured by ``bench/inference.py``, not assumed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nerlit import extras
from nerlit.data.casing import NUM_CASINGS
from nerlit.errors import ExportError, OptionError
from nerlit.inference.backends import ONNX_FILE
from nerlit.inference.card import CardMetadata, write_model_card
from nerlit.inference.loading import load_model
from nerlit.inference.outputs import fresh_folder
from nerlit.models.network import NerNetwork

log = logging.getLogger(__name__)

QUANTIZE = (None, "int8")
#: batch shapes the check runs (one of them padded); not the export example's (2, 8)
CHECK_SHAPES = ((1, 5), (3, 17), (2, 8))
#: ONNX Runtime fuses and reorders float ops: a faithful graph differs by ~1e-6
TOLERANCE = 1e-3


class _Logits(nn.Module):
    """``NerNetwork.forward`` with the graph's inputs: casing ids only when the model uses them
    (the exporter would keep an unused input)."""

    def __init__(self, network: NerNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.network(input_ids, attention_mask)


class _CasedLogits(_Logits):
    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, casing_ids: torch.Tensor
    ) -> torch.Tensor:
        return self.network(input_ids, attention_mask, casing_ids)


def input_names(network: NerNetwork) -> list[str]:
    names = ["input_ids", "attention_mask"]
    return names + ["casing_ids"] if network.casing is not None else names


def example_inputs(network: NerNetwork, shape: tuple[int, int], seed: int = 0) -> dict:
    """Random token and casing ids of ``shape``, the first row padded at its end."""
    generator = torch.Generator().manual_seed(seed)
    vocab = int(network.config.vocab_size)
    ids = torch.randint(min(1000, vocab - 1), vocab, shape, generator=generator)
    mask = torch.ones(shape, dtype=torch.long)
    if shape[1] > 3:
        mask[0, -(shape[1] // 3) :] = 0
    casing = torch.randint(0, NUM_CASINGS, shape, generator=generator)
    inputs = {"input_ids": ids, "attention_mask": mask, "casing_ids": casing}
    return {name: inputs[name] for name in input_names(network)}


def export_graph(network: NerNetwork, path: Path, opset: int | None = None) -> Path:
    """Write ``network`` (fp32, eval mode) as one self-contained ONNX file at ``path``."""
    extras.require("format=onnx")
    network = network.float().eval()
    module = (_CasedLogits if network.casing is not None else _Logits)(network).eval()
    names = input_names(network)
    inputs = example_inputs(network, (2, 8))
    dynamic = {name: {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC} for name in names}
    chatter = io.StringIO()
    # the exporter prints its progress and warns about optional torchvision ops: not the user's
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(chatter),
        _quiet("torch.onnx", "torch.export", "onnxscript", "onnx_ir"),
    ):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            tuple(inputs[name] for name in names),
            str(path),
            input_names=names,
            output_names=["logits"],
            dynamic_shapes=dynamic,
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    return path


@contextlib.contextmanager
def _quiet(*names: str):
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _session(path: Path):
    extras.require("backend=onnx")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_graph(
    network: NerNetwork,
    path: Path,
    shapes: Sequence[tuple[int, int]] = CHECK_SHAPES,
    tolerance: float | None = TOLERANCE,
) -> float:
    """The largest |ONNX Runtime - torch| logit difference over random batches of ``shapes``
    (padded positions included: they are computed, if never read). With a ``tolerance``, a
    larger difference raises :class:`ExportError`; ``None`` only measures (int8)."""
    session = _session(path)
    worst = 0.0
    for seed, shape in enumerate(shapes):
        inputs = example_inputs(network, shape, seed=seed + 1)
        with torch.inference_mode():
            expected = network(**inputs).float().numpy()
        got = session.run(["logits"], {k: v.numpy() for k, v in inputs.items()})[0]
        if got.shape != expected.shape or not np.isfinite(got).all():
            raise ExportError(
                f"{path}: ONNX Runtime gave logits of shape {list(got.shape)} (finite: "
                f"{bool(np.isfinite(got).all())}) where torch gives {list(expected.shape)}"
            )
        difference = float(np.abs(got - expected).max())
        worst = max(worst, difference)
        scale = 1.0 + float(np.abs(expected).max())
        if tolerance is not None and difference > tolerance * scale:
            raise ExportError(
                f"{path}: ONNX Runtime and torch differ by {difference:.3g} in the logits of a "
                f"{shape[0]}x{shape[1]} batch (tolerance {tolerance * scale:.3g}): the graph does "
                f"not compute the network; please report it with the model's config.json"
            )
    return worst


def quantizable_matmuls(path: Path) -> tuple[list[str], list[str]]:
    """(nodes to quantize, nodes kept in fp32 on purpose) of an exported graph.

    Quantized: ``MatMul`` nodes with a constant (initializer) weight, the encoder's linear
    layers. Kept: the classifier, the last such ``MatMul`` before the ``logits`` output (found by
    walking back from the output, not by name, which the exporter chooses). Everything that is
    not such a ``MatMul`` (embedding ``Gather``, attention products, norms) is never quantized.
    """
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    constants = {i.name for i in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    producer = {out: node for node in model.graph.node for out in node.output}
    weighted = [
        n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in constants
    ]
    node = producer.get(model.graph.output[0].name)
    classifier = None
    seen = set()
    while node is not None and node.name not in seen:
        seen.add(node.name)
        if node.op_type in ("MatMul", "Gemm"):
            classifier = node.name
            break
        # the path back through Add (bias) / Reshape: follow the computed, non-constant input
        computed = [i for i in node.input if i in producer and i not in constants]
        node = producer[computed[0]] if computed else None
    kept = [classifier] if classifier in weighted else []
    return [n for n in weighted if n not in kept], kept


def quantize_int8(
    source: Path,
    target: Path,
    per_channel: bool = True,
    reduce_range: bool = True,
    keep_classifier: bool = True,
) -> list[str]:
    """Dynamic int8 quantization of the encoder's linear layers (see the module docstring);
    returns the weighted ``MatMul`` nodes kept in fp32 (the classifier). The options exist to
    measure what each choice costs (``bench/inference.py``); the defaults are the shipped ones."""
    extras.require("backend=onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized, kept = quantizable_matmuls(source)
    if not keep_classifier:
        quantized, kept = quantized + kept, []
    with _quiet("root"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            reduce_range=reduce_range,
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=quantized,
        )
    log.info("int8: %d MatMul weights quantized; fp32 kept: %s", len(quantized), kept)
    return kept


def export_onnx(
    path: str | Path,
    output_dir: str | Path,
    tokenizer_dir: str | Path | None = None,
    quantize: str | None = None,
    overwrite: bool = False,
    opset: int | None = None,
    card: CardMetadata | None = None,
    **int8_options: bool,
) -> Path:
    """A checkpoint or Hugging Face folder as an ONNX folder (see the module docstring).

    ``output_dir`` must be new or empty, or is replaced whole with ``overwrite``. The fp32 graph
    is checked against torch before anything else is written; an int8 graph is checked to run
    and give finite logits of the right shape (its distance from fp32 is logged, its accuracy is
    ``bench/inference.py``'s to measure). ``int8_options`` go to :func:`quantize_int8`
    (``per_channel``, ``reduce_range``, ``keep_classifier``).
    """
    if quantize not in QUANTIZE:
        raise OptionError(f"quantize={quantize!r}: expected null (fp32) or int8")
    extras.require("format=onnx")
    extras.require("backend=onnx")
    with fresh_folder(output_dir, overwrite) as folder:
        loaded = load_model(path, tokenizer_dir, backend="torch")
        network = loaded.network.float().eval()
        graph = folder / ONNX_FILE
        fp32 = folder / "model.fp32.onnx" if quantize else graph
        export_graph(network, fp32, opset)
        difference = check_graph(network, fp32)
        log.info("ONNX graph checked: max |onnxruntime - torch| = %.2g", difference)
        kept: list[str] = []
        if quantize:
            kept = quantize_int8(fp32, graph, **int8_options)
            fp32.unlink()
            difference = check_graph(network, graph, tolerance=None)
            log.info("int8 graph: max |int8 - fp32 torch| logit difference %.3g", difference)
        onnx_settings = {
            "file": ONNX_FILE,
            "quantize": quantize,
            "inputs": input_names(network),
            "fp32_kept": kept,
            **({"int8_options": int8_options} if quantize and int8_options else {}),
        }
        network.save_config(folder, **loaded.settings, onnx=onnx_settings)
        network.save_extra_weights(folder, casing=False)
        loaded.tokenizer.save_pretrained(folder)
        write_model_card(folder, loaded, format="onnx", quantize=quantize, metadata=card)
    out = Path(output_dir).expanduser()
    log.info("exported %s -> %s (ONNX%s)", path, out, f", {quantize}" if quantize else "")
    return out

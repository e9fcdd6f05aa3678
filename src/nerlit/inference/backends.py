"""What runs the network for ``Tagger``: PyTorch, or ONNX Runtime on an exported graph.

A backend maps one padded batch of windows, ``(input_ids, attention_mask, casing_ids)``, to
logits ``[batch, tokens, labels]``, gives the CRF scores the decoder needs, and says how many
batches it may run at once (``concurrent_batches``). Nothing else differs between backends:
``Tagger`` builds the same windows, merges the same words and decodes with the same decoder on
top of either, so what it promises (nothing truncated, valid spans, offsets into the text) holds
for every backend, and a test compares their tags.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nerlit import extras
from nerlit.errors import ModelLoadError, OptionError
from nerlit.models.network import EXTRA_WEIGHTS, NerNetwork

BACKENDS = ("auto", "torch", "onnx")
#: the graph file of a folder written by ``nerlit export format=onnx``
ONNX_FILE = "model.onnx"


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (CPU: AVX512-BF16/AMX via oneDNN; most GPUs)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


class TorchBackend:
    """The network itself, on ``device``, in fp32 or under bf16 autocast, one batch at a time.

    One at a time because torch's intra-op thread count is process-wide: batches run at once
    from several threads would each spread over all cores (oversubscribed), or would need a
    per-thread ``torch.set_num_threads`` that also changes the default of every thread the user
    starts afterwards.
    """

    name = "torch"
    concurrent_batches = 1

    def __init__(
        self,
        network: NerNetwork,
        device: str | None,
        precision: str,
        concurrent_batches: int | None = None,
    ) -> None:
        if concurrent_batches not in (None, 1):
            raise OptionError(
                f"concurrent_batches={concurrent_batches}: only backend=onnx runs batches at "
                f"once (torch's threads are process-wide); leave it null for backend=torch"
            )
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if precision == "auto":
            precision = "bf16" if native_bf16(self.device) else "fp32"
        self.precision = precision
        self.network = network.to(self.device).eval()

    @property
    def config(self):
        return self.network.config

    @property
    def labels(self) -> list[str]:
        return self.network.labels

    def crf_scores(self) -> dict[str, torch.Tensor] | None:
        """Read at every decode: a test (or a user) may swap the network's CRF."""
        if self.network.crf is None:
            return None
        return {k: v.detach().float().cpu() for k, v in self.network.crf.learned().items()}

    def __call__(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, casing_ids: torch.Tensor
    ) -> torch.Tensor:
        autocast = torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        )
        with autocast:
            return self.network(
                input_ids.to(self.device),
                attention_mask.to(self.device),
                casing_ids.to(self.device) if self.network.casing is not None else None,
            )


class OnnxBackend:
    """An ONNX Runtime session on a graph written by ``nerlit export format=onnx``.

    The graph takes ``input_ids`` and ``attention_mask`` (and ``casing_ids`` for a model trained
    with casing features: the casing embedding is inside the graph) and returns ``logits``; a CRF
    head's transition scores come from ``nerlit.safetensors`` beside it, since decoding is
    nerlit's, not the graph's. The graph runs in the precision it was exported in (fp32, or int8
    weights after ``quantize=int8``); its threads follow torch's (``threads=`` of predict and
    evaluate), so one setting governs both backends.

    On CPU the threads run ``concurrent_batches`` batches at once, each on its share of them
    (default: one batch per thread, each single-threaded). ONNX Runtime's ``run`` is thread-safe
    and releases the GIL, and a BERT layer's matrices for one batch of short windows are too small
    to split well across threads: on MiniLM int8, 2 threads, 2,000 GMB test sentences, two
    single-threaded batches at once took 5.3 s of forward against 7.4 s for one batch on both
    threads (docs/results.md). On a GPU one batch at a time.

    On CPU the session leaves out one of ONNX Runtime's graph fusions, ``SkipLayerNormFusion``
    (residual ``Add`` + ``LayerNormalization`` into one ``SkipLayerNormalization``): its CPU
    kernel (onnxruntime 1.32) took 14.6% of the int8 graph's kernel time where the two ops it
    replaces take 4%, and without it ``Tagger`` on 2,000 GMB test sentences ran 10% (fp32) and 15%
    (int8) faster, fp32 logits within 1e-5 (docs/results.md). GPUs keep every fusion.
    """

    #: ONNX Runtime fusions left out on CPU (see above); the names are ORT's optimizer names
    CPU_DISABLED_FUSIONS = ("SkipLayerNormFusion",)

    name = "onnx"

    def __init__(
        self,
        graph: Path,
        config,
        device: str | None,
        precision: str,
        concurrent_batches: int | None = None,
    ) -> None:
        extras.require("backend=onnx")
        import onnxruntime as ort

        if precision not in ("auto", "fp32"):
            raise OptionError(
                f"precision={precision}: an ONNX graph runs as it was exported (fp32, or int8 "
                f"weights with quantize=int8); bf16 is for backend=torch"
            )
        saved = getattr(config, "nerlit", None) or {}
        self.precision = (saved.get("onnx") or {}).get("quantize") or "fp32"
        self.config = config
        self.labels = [config.id2label[i] for i in range(len(config.id2label))]
        self.device = torch.device(device or "cpu")
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise OptionError(
                    "device=cuda: this onnxruntime has no CUDA provider (pip install "
                    "onnxruntime-gpu), or run the graph on device=cpu"
                )
            providers.insert(0, "CUDAExecutionProvider")
        elif self.device.type != "cpu":
            raise OptionError(f"device={device}: backend=onnx runs on cpu or cuda")
        threads = torch.get_num_threads()
        if concurrent_batches is None:
            concurrent_batches = threads if self.device.type == "cpu" else 1
        self.concurrent_batches = concurrent_batches
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads // concurrent_batches)
        options.log_severity_level = 3  # warnings about unused initializers are not the user's
        disabled = set(self.CPU_DISABLED_FUSIONS) if self.device.type == "cpu" else set()
        try:
            self.session = ort.InferenceSession(
                str(graph), options, providers=providers, disabled_optimizers=disabled
            )
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own error types
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ModelLoadError(f"{graph}: not a graph ONNX Runtime can run ({first})") from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.crf = _crf_scores(graph.parent, saved)

    def crf_scores(self) -> dict[str, torch.Tensor] | None:
        return self.crf

    def __call__(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, casing_ids: torch.Tensor
    ) -> torch.Tensor:
        given = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "casing_ids": casing_ids,
        }
        feed = {name: given[name].numpy() for name in self.inputs}
        return torch.from_numpy(self.session.run(["logits"], feed)[0])


def _crf_scores(folder: Path, saved: dict) -> dict[str, torch.Tensor] | None:
    if saved.get("head", "linear") != "crf":
        return None
    from safetensors.torch import load_file

    path = folder / EXTRA_WEIGHTS
    if not path.is_file():
        raise ModelLoadError(f"{folder}: a CRF model without its transitions ({EXTRA_WEIGHTS})")
    tensors = load_file(path)
    return {name: tensors[f"crf.{name}"].float() for name in ("transitions", "start", "end")}


def create_backend(
    loaded, backend: str, device: str | None, precision: str, concurrent_batches: int | None = None
):
    """The backend ``backend`` names (``auto``: ONNX Runtime for a folder with a graph, else
    torch) for a :class:`~nerlit.inference.loading.LoadedModel`; ``concurrent_batches``: batches
    run at once (None: the backend's default)."""
    if backend not in BACKENDS:
        raise OptionError(f"backend={backend!r} is not one of {BACKENDS}")
    if loaded.onnx is not None and backend in ("auto", "onnx"):
        return OnnxBackend(loaded.onnx, loaded.config, device, precision, concurrent_batches)
    if backend == "onnx":
        raise ModelLoadError(
            f"backend=onnx: {loaded.source} holds no ONNX graph; export one with "
            f"nerlit export ckpt_path={loaded.source} format=onnx output_dir=DIR"
        )
    if loaded.network is None:
        raise ModelLoadError(f"{loaded.source}: no torch weights to run with backend=torch")
    return TorchBackend(loaded.network, device, precision, concurrent_batches)

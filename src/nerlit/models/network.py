"""NerNetwork: the one network that training, ``Tagger``, export and loading share.

A transformers ``*ForTokenClassification`` model (encoder -> dropout -> linear classifier, the
standard layout, so a plain model's export is a folder the Hugging Face pipeline loads without
custom code), plus what nerlit adds: a casing-class embedding added to the input embeddings
(``case_features``) and a CRF's transition scores (``head="crf"``). ``NerModule`` trains it,
``Tagger`` runs it, :meth:`save_pretrained` exports it and :meth:`load` rebuilds it from a
checkpoint or an exported folder. Nothing else in nerlit knows its state-dict keys.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import AutoConfig, AutoModelForTokenClassification, PreTrainedModel

from nerlit.data.casing import NUM_CASINGS
from nerlit.data.encoding import IGNORE_INDEX
from nerlit.errors import ModelLoadError, OptionError
from nerlit.models.checkpoint import read_checkpoint
from nerlit.models.decoding import decode_words
from nerlit.models.heads import CRF, HEADS, compact

#: NerModule keeps the network as ``self.network``: its keys in a Lightning checkpoint
CHECKPOINT_PREFIX = "network."
#: the casing embedding and CRF scores of an exported folder, beside the HF weights
EXTRA_WEIGHTS = "nerlit.safetensors"
#: ``model.attention``: which scaled-dot-product-attention kernel the encoder runs
ATTENTION = ("auto", "flash", "efficient", "cudnn", "math")
_KERNELS = {
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "math": SDPBackend.MATH,
}


def attention_kernels(choice: str, device_type: str) -> list[SDPBackend] | None:
    """The SDPA kernels ``choice`` allows on a device, None for torch's own pick.

    ``auto`` on a GPU leaves cuDNN's kernel out: torch 2.11 picks it for head size 64
    (BERT-base) and it builds a new plan for every new sequence length, 150 ms each on an H200,
    which length-grouped batches hit at nearly every step; flash (unpadded batches) and
    memory-efficient attention (padded ones) plan nothing (docs/results.md, "Training on a
    GPU"). On a CPU ``auto`` is torch's own choice. An explicit kernel that cannot run an input
    (flash with a padding mask) fails with torch's "No available kernel" error.
    """
    if choice not in ATTENTION:
        raise ModelLoadError(f"model.attention={choice!r} is not one of {ATTENTION}")
    if choice == "auto":
        if device_type == "cpu":
            return None
        return [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    return [_KERNELS[choice]]


def token_classification_config(
    encoder_config: dict, labels: Sequence[str], dropout: float | None = None
):
    """A ``*ForTokenClassification`` config for ``labels`` from an encoder's ``to_dict()``."""
    config = {
        k: v
        for k, v in encoder_config.items()
        if k not in ("id2label", "label2id", "num_labels", "architectures", "nerlit")
    }
    if dropout is not None:
        config["classifier_dropout"] = dropout
    return AutoConfig.for_model(
        config.pop("model_type"),
        **config,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )


log = logging.getLogger(__name__)


class _LoadReport(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in record.getMessage()


@contextlib.contextmanager
def _expected_load_report_left_out():
    """transformers prints a multi-line LOAD REPORT for every encoder put under a new token
    classifier: the classifier is MISSING (it starts fresh, as it must) and the pretraining heads
    (pooler, MLM) are UNEXPECTED (they are not used). nerlit reads the same facts from
    ``output_loading_info`` and warns only about what is not expected
    (:func:`_warn_unexpected_missing`)."""
    logger = logging.getLogger("transformers.modeling_utils")
    report = _LoadReport()
    logger.addFilter(report)
    try:
        yield
    finally:
        logger.removeFilter(report)


def _warn_unexpected_missing(pretrained: str, missing: Sequence[str]) -> None:
    """One warning naming encoder weights the checkpoint lacked (they start random): a wrong or
    partial checkpoint, unlike the fresh classifier every fine-tune starts with."""
    unexpected = [key for key in missing if not key.startswith("classifier.")]
    if unexpected:
        shown = ", ".join(unexpected[:5]) + (f" (+{len(unexpected) - 5})" * (len(unexpected) > 5))
        log.warning(
            "%s lacks %d encoder weights, which start random: %s. Is it the encoder you meant?",
            pretrained,
            len(unexpected),
            shown,
        )


class NerNetwork(nn.Module):
    """Encoder (+ casing embedding) -> dropout -> linear classifier (+ CRF transitions)."""

    def __init__(
        self,
        model: PreTrainedModel,
        head: str = "linear",
        case_features: bool = False,
        attention: str = "auto",
    ):
        super().__init__()
        if head not in HEADS:
            raise ModelLoadError(f"model.head={head!r} is not one of {HEADS}")
        attention_kernels(attention, "cpu")  # an unknown choice stops here
        self.model = model
        self.head = head
        self.attention = attention
        labels = self.labels
        # forbidden transitions are fixed, so CRF decoding never yields an ill-formed span
        self.crf = CRF(labels) if head == "crf" else None
        # casing classes for uncased encoders (nerlit.data.casing): zero-initialised, so training
        # starts from the pretrained encoder unchanged
        self.casing = None
        if case_features:
            self.casing = nn.Embedding(NUM_CASINGS, model.config.hidden_size)
            nn.init.zeros_(self.casing.weight)

    # -- construction --

    @classmethod
    def build(
        cls,
        encoder_config: dict,
        labels: Sequence[str],
        head: str = "linear",
        case_features: bool = False,
        dropout: float | None = None,
        pretrained: str | None = None,
        attention: str = "auto",
    ) -> NerNetwork:
        """Random-init from a config, or with an encoder's ``pretrained`` weights (a local folder
        or hub id; the classifier, casing and CRF start fresh)."""
        config = token_classification_config(encoder_config, labels, dropout)
        if pretrained:
            # in fp32 whatever the stored dtype (transformers 5 keeps it): an encoder saved in fp16
            # or bf16 would otherwise be fine-tuned with half-precision master weights
            with _expected_load_report_left_out():
                model, loading = AutoModelForTokenClassification.from_pretrained(
                    pretrained, config=config, dtype=torch.float32, output_loading_info=True
                )
            _warn_unexpected_missing(pretrained, loading.get("missing_keys") or [])
        else:
            model = AutoModelForTokenClassification.from_config(config, dtype=torch.float32)
        # from_pretrained returns eval mode, and Lightning keeps each submodule's mode: without
        # this the encoder's dropout would silently stay off during training
        return cls(model.train(), head, case_features, attention)

    @classmethod
    def load(cls, path: str | Path) -> NerNetwork:
        """From a Lightning checkpoint of NerModule (``.ckpt``) or a :meth:`save_pretrained`
        folder; in eval mode."""
        path = Path(path)
        if path.is_dir():
            return cls._from_folder(path).eval()
        return cls.from_checkpoint(read_checkpoint(path), str(path)).eval()

    @classmethod
    def from_checkpoint(cls, checkpoint: dict, source: str = "checkpoint") -> NerNetwork:
        hparams = checkpoint["hyper_parameters"]
        network = cls.build(
            dict(hparams["encoder_config"]),
            list(hparams["labels"]),
            hparams.get("head", "linear"),
            bool(hparams.get("case_features")),
            attention=hparams.get("attention", "auto"),
        )
        state = _network_state(checkpoint["state_dict"])
        differences = state_differences(network.state_dict(), state, network.labels)
        if differences:
            raise ModelLoadError(
                f"{source}: its weights do not fit its own settings (hyper_parameters): "
                f"{'; '.join(differences)}. The file was edited or mixed from two runs: use a "
                f"checkpoint as nerlit train wrote it."
            )
        network.load_state_dict(state, strict=True)
        return network

    @classmethod
    def _from_folder(cls, path: Path) -> NerNetwork:
        config = read_folder_config(path)
        try:
            model = AutoModelForTokenClassification.from_pretrained(
                path, config=config, dtype=torch.float32
            )
        except (OSError, ValueError, RuntimeError) as error:  # no weights, other shapes, ...
            raise ModelLoadError(f"{path}: cannot load its model ({_first_line(error)})") from None
        saved = getattr(model.config, "nerlit", None) or {}
        network = cls(model, saved.get("head", "linear"), bool(saved.get("case_features")))
        network.load_extra_weights(path)
        return network

    def load_extra_weights(self, path: Path) -> None:
        """The casing embedding and CRF scores of an exported folder (``nerlit.safetensors``)."""
        ours = {k: v for k, v in self.state_dict().items() if not k.startswith("model.")}
        if not ours:
            return
        if not (path / EXTRA_WEIGHTS).is_file():
            raise ModelLoadError(
                f"{path}: its config names {', '.join(sorted({k.split('.')[0] for k in ours}))} "
                f"weights, but the folder has no {EXTRA_WEIGHTS}: export the model again"
            )
        try:
            saved = load_file(path / EXTRA_WEIGHTS)
        except Exception as error:  # noqa: BLE001 - safetensors raises its own error types
            raise ModelLoadError(
                f"{path / EXTRA_WEIGHTS}: unreadable ({_first_line(error)})"
            ) from None
        differences = state_differences(ours, saved, self.labels)
        if differences:
            raise ModelLoadError(
                f"{path / EXTRA_WEIGHTS} does not fit the folder's config.json: "
                f"{'; '.join(differences)}"
            )
        self.load_state_dict(saved, strict=False)

    # -- what it computes --

    @property
    def labels(self) -> list[str]:
        id2label = self.model.config.id2label
        return [id2label[i] for i in range(len(id2label))]

    @property
    def config(self):
        return self.model.config

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        casing_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits [batch, tokens, labels]."""
        if self.casing is None:
            inputs = {"input_ids": input_ids}
        else:
            if casing_ids is None:
                raise ValueError("a model trained with case_features needs casing_ids")
            embeds = self.model.get_input_embeddings()(input_ids) + self.casing(casing_ids)
            inputs = {"inputs_embeds": embeds}
        kernels = attention_kernels(self.attention, input_ids.device.type)
        mask = self.encoder_mask(attention_mask, input_ids.device.type != "cpu")
        try:
            with sdpa_kernel(kernels) if kernels else contextlib.nullcontext():
                return self.model(**inputs, attention_mask=mask).logits
        except RuntimeError as error:
            if kernels is None or not (
                "No available kernel" in str(error) or "No viable backend" in str(error)
            ):
                raise
            raise OptionError(
                f"model.attention={self.attention}: torch has no such attention kernel for these "
                f"inputs on {input_ids.device.type} (flash takes no padding mask; cudnn and "
                f"efficient need a GPU): use model.attention=auto"
            ) from None

    def encoder_mask(self, attention_mask: torch.Tensor, prepared: bool) -> torch.Tensor:
        """The padding mask as the encoder gets it: ``prepared``, the 4D boolean mask that
        transformers would build for SDPA (broadcast, no copy), which it passes through as is.

        Why: given a 2D mask, transformers first checks whether it holds any padding
        (``padding_mask.all()``) to drop it, and reading that answer waits for the GPU at every
        forward, training and evaluation alike (an H200 showed one host sync per step). On a CPU
        there is nothing to wait for, so the 2D mask goes in unchanged there.
        """
        if not prepared or getattr(self.model.config, "_attn_implementation", None) != "sdpa":
            return attention_mask
        rows, length = attention_mask.shape
        return attention_mask.bool()[:, None, None, :].expand(rows, 1, length, length)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over labelled tokens, or the CRF's NLL over each window's labelled
        tokens (gathered left, so a word's continuation subwords never sit between transitions)."""
        labelled = labels != IGNORE_INDEX
        if self.crf is not None:
            emissions, mask = compact(logits, labelled)
            tags, _ = compact(labels, labelled)
            return self.crf.nll(emissions, tags, mask)
        return nn.functional.cross_entropy(
            logits.float().view(-1, logits.size(-1)), labels.view(-1), ignore_index=IGNORE_INDEX
        )

    def decode(
        self, word_logits: Sequence[torch.Tensor], method: str = "constrained"
    ) -> tuple[list[list[str]], list[list[float]]]:
        """IOB2 tags and label probabilities per word of whole sentences (the one decoder)."""
        crf = None if self.crf is None else {k: v.cpu() for k, v in self.crf.learned().items()}
        return decode_words(word_logits, self.labels, method, crf)

    # -- export --

    def save_pretrained(self, directory: str | Path, **settings) -> Path:
        """A Hugging Face folder: config (id2label, and nerlit's settings under ``nerlit``),
        model weights, and the casing/CRF tensors in ``nerlit.safetensors``. ``settings`` (e.g.
        the data's document context) go into ``config.nerlit`` for inference to read back."""
        out = self.save_config(directory, **settings)
        self.model.save_pretrained(out)
        self.save_extra_weights(out)
        # safetensors creates its files 0600; give them the mode config.json got (the umask's)
        mode = (out / "config.json").stat().st_mode & 0o777
        for weights in out.glob("*.safetensors"):
            weights.chmod(mode)
        return out

    def save_config(self, directory: str | Path, **settings) -> Path:
        """``config.json`` alone (what an ONNX export keeps beside its graph).

        ``settings`` must be small JSON values (numbers, strings, lists of them), never tensors
        or local paths: a config travels with the model, and an absolute path of the machine
        that trained it means nothing elsewhere (and tells what it should not).
        """
        for key, value in settings.items():
            if isinstance(value, torch.Tensor) or (
                isinstance(value, str) and Path(value).is_absolute()
            ):
                raise ValueError(f"config.nerlit.{key}: a tensor or local path has no place there")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.model.config.nerlit = {
            "head": self.head,
            "case_features": self.casing is not None,
            **settings,
        }
        self.model.config.save_pretrained(out)
        return out

    def save_extra_weights(self, directory: str | Path, casing: bool = True) -> Path | None:
        """The tensors nerlit adds (casing embedding, CRF scores) in ``nerlit.safetensors``, not
        in ``config.json``; ``casing=False`` leaves out the casing embedding (an ONNX graph holds
        it already)."""
        extra = {
            k: v.detach().float().contiguous()
            for k, v in self.state_dict().items()
            if not k.startswith("model.") and (casing or not k.startswith("casing."))
        }
        if not extra:
            return None
        path = Path(directory) / EXTRA_WEIGHTS
        save_file(extra, str(path))
        return path


def read_folder_config(path: Path):
    """An exported folder's ``config.json`` as a transformers config, or one line saying why not."""
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path}: a folder without config.json is not a model")
    try:
        return AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError) as error:  # not JSON, unknown model_type, ...
        raise ModelLoadError(f"{path}/config.json: unreadable ({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _layers(state: Mapping[str, torch.Tensor]) -> int:
    return len({m.group(1) for k in state if (m := re.search(r"\.layers?\.(\d+)\.", k))})


def _dimension(state: Mapping[str, torch.Tensor], suffix: str, axis: int) -> int | None:
    for key, value in state.items():
        if key.endswith(suffix) and value.dim() > axis:
            return int(value.shape[axis])
    return None


def state_differences(
    expected: Mapping[str, torch.Tensor],
    given: Mapping[str, torch.Tensor],
    labels: Sequence[str] | None = None,
) -> list[str]:
    """Why ``given`` weights do not fit a network whose state is ``expected``, in words a user
    can act on ("the weights have 9 labels, the settings 5 [...]", "hidden size: ..."), rather
    than ``load_state_dict``'s list of every mismatched tensor. Empty when they fit."""
    found: list[str] = []
    named = (
        ("classifier.weight", 0, "labels"),
        ("classifier.bias", 0, "labels"),
        ("crf.transitions", 0, "labels"),
        ("word_embeddings.weight", 1, "hidden size"),
        ("casing.weight", 1, "hidden size"),
        ("word_embeddings.weight", 0, "vocabulary size"),
    )
    for suffix, axis, what in named:
        theirs, ours = _dimension(given, suffix, axis), _dimension(expected, suffix, axis)
        if theirs is None or ours is None or theirs == ours or any(what in f for f in found):
            continue
        if what == "labels":
            names = f" {list(labels)}" if labels is not None else ""
            found.append(f"the weights have {theirs} labels, the settings {ours}{names}")
        else:
            found.append(f"{what}: the weights {theirs}, the settings {ours}")
    if _layers(given) != _layers(expected):
        found.append(f"layers: the weights {_layers(given)}, the settings {_layers(expected)}")
    for part, what in (("crf.", "a CRF head"), ("casing.", "casing features")):
        theirs = any(k.startswith(part) for k in given)
        ours = any(k.startswith(part) for k in expected)
        if theirs != ours:
            found.append(
                f"{what}: {'in' if theirs else 'not in'} the weights, "
                f"{'in' if ours else 'not in'} the settings"
            )
    if not found:
        missing = [k for k in expected if k not in given]
        unexpected = [k for k in given if k not in expected]
        shaped = [
            k for k in expected if k in given and tuple(given[k].shape) != tuple(expected[k].shape)
        ]
        if shaped:
            key = shaped[0]
            found.append(
                f"{len(shaped)} tensors of other shapes, e.g. {key}: the weights "
                f"{list(given[key].shape)}, the settings {list(expected[key].shape)}"
            )
        if missing:
            found.append(f"{len(missing)} tensors missing from the weights, e.g. {missing[0]}")
        if unexpected:
            found.append(
                f"{len(unexpected)} tensors the settings do not have, e.g. {unexpected[0]}"
            )
    return found


def _network_state(state_dict: dict) -> dict:
    """The network's entries of a NerModule state dict."""
    return {
        key[len(CHECKPOINT_PREFIX) :]: value
        for key, value in state_dict.items()
        if key.startswith(CHECKPOINT_PREFIX)
    }

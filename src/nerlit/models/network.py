"""NerNetwork: the one network that training, ``Tagger``, export and loading share.

A transformers ``*ForTokenClassification`` model (encoder -> dropout -> linear classifier, the
standard layout, so a plain model's export is a folder the Hugging Face pipeline loads without
custom code), plus what nerlit adds: a casing-class embedding added to the input embeddings
(``case_features``) and a CRF's transition scores (``head="crf"``). ``NerModule`` trains it,
``Tagger`` runs it, :meth:`save_pretrained` exports it and :meth:`load` rebuilds it from a
checkpoint or an exported folder. Nothing else in nerlit knows its state-dict keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModelForTokenClassification, PreTrainedModel

from nerlit.data.casing import NUM_CASINGS
from nerlit.data.encoding import IGNORE_INDEX
from nerlit.errors import ModelLoadError
from nerlit.models.decoding import decode_words
from nerlit.models.heads import CRF, HEADS, compact

#: NerModule keeps the network as ``self.network``: its keys in a Lightning checkpoint
CHECKPOINT_PREFIX = "network."
#: the casing embedding and CRF scores of an exported folder, beside the HF weights
EXTRA_WEIGHTS = "nerlit.safetensors"
#: keys of checkpoints written before the network existed (encoder/classifier on the module)
_LEGACY_PREFIXES = {"encoder.": "model.{base}.", "classifier.": "model.classifier."}


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


class NerNetwork(nn.Module):
    """Encoder (+ casing embedding) -> dropout -> linear classifier (+ CRF transitions)."""

    def __init__(self, model: PreTrainedModel, head: str = "linear", case_features: bool = False):
        super().__init__()
        if head not in HEADS:
            raise ModelLoadError(f"model.head={head!r} is not one of {HEADS}")
        self.model = model
        self.head = head
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
    ) -> NerNetwork:
        """Random-init from a config, or with an encoder's ``pretrained`` weights (a local folder
        or hub id; the classifier, casing and CRF start fresh)."""
        config = token_classification_config(encoder_config, labels, dropout)
        if pretrained:
            model = AutoModelForTokenClassification.from_pretrained(pretrained, config=config)
        else:
            model = AutoModelForTokenClassification.from_config(config)
        # from_pretrained returns eval mode, and Lightning keeps each submodule's mode: without
        # this the encoder's dropout would silently stay off during training
        return cls(model.train(), head, case_features)

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
        )
        state = _network_state(checkpoint["state_dict"], network.model.base_model_prefix)
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise ModelLoadError(
                f"{source}: weights do not fit the saved architecture: {error}"
            ) from None
        return network

    @classmethod
    def _from_folder(cls, path: Path) -> NerNetwork:
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path}: a folder without config.json is not a model")
        model = AutoModelForTokenClassification.from_pretrained(path)
        saved = getattr(model.config, "nerlit", None) or {}
        network = cls(model, saved.get("head", "linear"), bool(saved.get("case_features")))
        if (path / EXTRA_WEIGHTS).is_file():
            network.load_state_dict(load_file(path / EXTRA_WEIGHTS), strict=False)
        return network

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
        return self.model(**inputs, attention_mask=attention_mask).logits

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
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.model.config.nerlit = {
            "head": self.head,
            "case_features": self.casing is not None,
            **settings,
        }
        self.model.save_pretrained(out)
        extra = {
            k: v.detach().contiguous()
            for k, v in self.state_dict().items()
            if not k.startswith("model.")
        }
        if extra:
            save_file(extra, str(out / EXTRA_WEIGHTS))
        return out


def read_checkpoint(path: Path) -> dict:
    """A nerlit Lightning checkpoint as a dict, or one line saying what the file is not."""
    fix = (
        "Point it at a checkpoint (outputs/train/runs/*/checkpoints/*.ckpt) or at a folder "
        "written by `nerlit export`."
    )
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such checkpoint file or model folder. {fix}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - pickle/zip errors have many types
        raise ModelLoadError(f"{path}: cannot be read as a checkpoint ({error}). {fix}") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ModelLoadError(f"{path}: not a Lightning checkpoint (no state_dict). {fix}")
    hparams = checkpoint.get("hyper_parameters") or {}
    if "encoder_config" not in hparams or "labels" not in hparams:
        raise ModelLoadError(
            f"{path}: not a nerlit checkpoint (no encoder_config/labels in its hyper_parameters)."
            f" {fix}"
        )
    return checkpoint


def _network_state(state_dict: dict, base_prefix: str) -> dict:
    """The network's entries of a NerModule state dict, older key layouts included."""
    state = {}
    for key, value in state_dict.items():
        if key.startswith(CHECKPOINT_PREFIX):
            state[key[len(CHECKPOINT_PREFIX) :]] = value
            continue
        for old, new in _LEGACY_PREFIXES.items():
            if key.startswith(old):
                state[new.format(base=base_prefix) + key[len(old) :]] = value
                break
        else:
            if key.split(".")[0] in ("casing", "crf"):
                state[key] = value
    return state

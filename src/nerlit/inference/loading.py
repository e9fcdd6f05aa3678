"""A nerlit checkpoint or an exported folder -> a Hugging Face token-classification model.

Both sources become the same object (``AutoModelForTokenClassification`` + its tokenizer + the
label list), so ``Tagger`` on a checkpoint, ``Tagger`` on its export and ``transformers.pipeline``
on the export all run the very same network. NerModule is encoder -> dropout -> linear, which is
exactly what ``*ForTokenClassification`` is, so the conversion is a renaming of weights.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

from nerlit.errors import NerlitError

log = logging.getLogger(__name__)

#: where ``NerModule.on_save_checkpoint`` puts the tokenizer's files (name -> bytes)
TOKENIZER_KEY = "nerlit_tokenizer_files"
_FIX = (
    "Point it at a checkpoint (outputs/train/runs/*/checkpoints/*.ckpt) or at a folder written "
    "by `python -m nerlit.export`."
)


class ModelLoadError(NerlitError, RuntimeError):
    """The path is not a usable model; the message names it and says how to fix it."""


class OptionError(NerlitError, ValueError):
    """An inference option with a value nerlit does not know (decode, format, split)."""


@dataclass
class LoadedModel:
    """What inference needs: the network (eval mode), its tokenizer and its labels in id order."""

    model: torch.nn.Module
    tokenizer: object
    labels: list[str]
    source: str
    #: a CRF head's learned scores (``transitions`` [L, L], ``start`` [L], ``end`` [L]), if any
    crf: dict[str, torch.Tensor] | None = None
    #: casing-class embeddings [classes, hidden] added to the input embeddings, if trained with
    #: ``model.case_features`` (nerlit.data.casing)
    casing: torch.Tensor | None = None
    #: subwords of document context per side the model was trained with (``data.context``)
    context: int = 0


def quiet_transformers() -> None:
    """No weight-loading progress bars in CLI output: they bury the lines that matter."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_model(path: str | Path, tokenizer_dir: str | Path | None = None) -> LoadedModel:
    """Load a ``.ckpt`` file or an exported directory; ``tokenizer_dir`` overrides the tokenizer."""
    path = Path(path).expanduser()
    if path.is_dir():
        return _from_directory(path, tokenizer_dir)
    if path.is_file():
        return _from_checkpoint(path, tokenizer_dir)
    raise ModelLoadError(f"{path}: no such checkpoint file or model folder. {_FIX}")


def _from_directory(path: Path, tokenizer_dir: str | Path | None) -> LoadedModel:
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path}: a folder without config.json is not a model. {_FIX}")
    model = AutoModelForTokenClassification.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or path)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    extras = getattr(model.config, "nerlit", None) or {}
    saved = extras.get("crf")
    crf = {k: torch.tensor(v) for k, v in saved.items()} if saved else None
    casing = torch.tensor(extras["casing"]) if extras.get("casing") else None
    context = int(extras.get("context") or 0)
    return LoadedModel(model.eval(), tokenizer, labels, str(path), crf, casing, context)


def _read_checkpoint(path: Path) -> dict:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - pickle/zip errors have many types
        raise ModelLoadError(f"{path}: cannot be read as a checkpoint ({error}). {_FIX}") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ModelLoadError(f"{path}: not a Lightning checkpoint (no state_dict). {_FIX}")
    hparams = checkpoint.get("hyper_parameters") or {}
    if "encoder_config" not in hparams or "labels" not in hparams:
        raise ModelLoadError(
            f"{path}: not a nerlit checkpoint (no encoder_config/labels in its hyper_parameters)."
            f" {_FIX}"
        )
    return checkpoint


def _checkpoint_tokenizer(path: Path, checkpoint: dict, tokenizer_dir: str | Path | None):
    if tokenizer_dir:
        return AutoTokenizer.from_pretrained(tokenizer_dir)
    files = checkpoint.get(TOKENIZER_KEY)
    if files:
        with tempfile.TemporaryDirectory(prefix="nerlit-tokenizer-") as tmp:
            for name, data in files.items():
                (Path(tmp) / name).write_bytes(data)
            return AutoTokenizer.from_pretrained(tmp)
    saved = checkpoint["hyper_parameters"].get("tokenizer_dir")
    if saved and Path(saved).is_dir():
        return AutoTokenizer.from_pretrained(saved)
    raise ModelLoadError(
        f"{path}: the checkpoint holds no tokenizer and its run's tokenizer folder {saved!r} is "
        f"gone. Pass the tokenizer the model was trained with: tokenizer_dir=DIR (Python: "
        f"Tagger.load(path, tokenizer_dir=DIR))."
    )


def token_classifier(encoder_config: dict, labels: list[str]) -> torch.nn.Module:
    """An untrained ``*ForTokenClassification`` with NerModule's architecture and these labels."""
    config = dict(encoder_config)
    for key in ("id2label", "label2id", "num_labels", "architectures"):
        config.pop(key, None)
    config = AutoConfig.for_model(
        config.pop("model_type"),
        **config,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    try:
        model = AutoModelForTokenClassification.from_config(config)
    except ValueError as error:
        raise ModelLoadError(
            f"model type {config.model_type!r} has no token-classification class in transformers"
            f" ({error})"
        ) from None
    if not isinstance(getattr(model, "classifier", None), torch.nn.Linear):
        raise ModelLoadError(
            f"{type(model).__name__} has no linear `classifier`; nerlit cannot map its head"
        )
    return model


def _from_checkpoint(path: Path, tokenizer_dir: str | Path | None) -> LoadedModel:
    checkpoint = _read_checkpoint(path)
    hparams = checkpoint["hyper_parameters"]
    labels = list(hparams["labels"])
    model = token_classifier(dict(hparams["encoder_config"]), labels)
    state = checkpoint["state_dict"]
    encoder = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    head = {k[len("classifier.") :]: v for k, v in state.items() if k.startswith("classifier.")}
    try:
        model.base_model.load_state_dict(encoder, strict=True)
        model.classifier.load_state_dict(head, strict=True)
    except RuntimeError as error:
        raise ModelLoadError(
            f"{path}: weights do not fit the saved architecture: {error}"
        ) from None
    tokenizer = _checkpoint_tokenizer(path, checkpoint, tokenizer_dir)
    crf = None
    if hparams.get("head", "linear") == "crf":
        crf = {k: state[f"crf.{k}"].float() for k in ("transitions", "start", "end")}
    casing = state["casing.weight"].float() if "casing.weight" in state else None
    context = int(hparams.get("context") or 0)
    # kept in config.json by export: Tagger on the folder decodes with the same CRF, adds the
    # same casing embeddings and gives sentences the same document context; the HF pipeline
    # ignores all three and labels each word by argmax
    model.config.nerlit = {
        "source_checkpoint": str(path.resolve()),
        "head": hparams.get("head", "linear"),
        "eval_mode": hparams.get("eval_mode", "strict"),
        "reference_types": list(hparams.get("reference_types") or []),
        "crf": {k: v.tolist() for k, v in crf.items()} if crf else None,
        "casing": casing.tolist() if casing is not None else None,
        "context": context,
    }
    return LoadedModel(model.eval(), tokenizer, labels, str(path), crf, casing, context)


def export_huggingface(
    path: str | Path, output_dir: str | Path, tokenizer_dir: str | Path | None = None
) -> Path:
    """Write a standard Hugging Face folder (config with id2label/label2id, weights, tokenizer).

    ``transformers.pipeline("token-classification", model=output_dir)`` loads it offline, and
    so does ``Tagger.load(output_dir)``.
    """
    loaded = load_model(path, tokenizer_dir)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(out)
    loaded.tokenizer.save_pretrained(out)
    if loaded.casing is not None:
        log.warning(
            "%s was trained with model.case_features: Tagger.load(%s) uses them, but "
            "transformers.pipeline cannot compute them and runs a different network (worse "
            "entities); for a model served through the pipeline, train with "
            "model.case_features=false",
            path,
            out,
        )
    log.info("exported %s -> %s (%d labels)", path, out, len(loaded.labels))
    return out

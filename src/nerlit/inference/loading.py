"""A nerlit checkpoint or an exported folder -> the network, its tokenizer and its settings.

Both sources give the same :class:`~nerlit.models.network.NerNetwork`, so ``Tagger`` on a
checkpoint, ``Tagger`` on its export and (for a model without casing features or a CRF)
``transformers.pipeline`` on the export all run the very same network. A folder written by
``nerlit export format=onnx`` gives its graph instead (``LoadedModel.onnx``), with the same
config and tokenizer, for :class:`~nerlit.inference.backends.OnnxBackend`. A Hub id (``org/name``)
that is no local path is such a folder pushed with ``nerlit export push_to=``: it loads from the
Hugging Face cache (:mod:`nerlit.inference.hub`).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoTokenizer

from nerlit.errors import ModelLoadError
from nerlit.inference.backends import ONNX_FILE
from nerlit.inference.hub import download_model, is_hub_id
from nerlit.models.checkpoint import (
    DATA_KEY,
    TOKENIZER_KEY,
    read_checkpoint,
    training_progress,
)
from nerlit.models.network import NerNetwork, read_folder_config

log = logging.getLogger(__name__)

#: hyperparameters of a checkpoint that an export keeps (``config.json``, key ``nerlit``)
SETTINGS = ("decode", "eval_mode", "reference_types", "context", "max_length", "stride")


@dataclass
class LoadedModel:
    """What inference needs: the network (eval mode), its tokenizer and the run's settings."""

    #: the torch network; None for a folder holding an ONNX graph only
    network: NerNetwork | None
    tokenizer: object
    source: str
    #: ``decode`` (the method the run validated with), ``context`` (subwords of document context
    #: per side, ``data.context``), ``max_length``/``stride`` (its windows), ``eval_mode``,
    #: ``reference_types``
    settings: dict
    #: the graph of a ``nerlit export format=onnx`` folder
    onnx: Path | None = None
    #: the transformers config (id2label, sizes); the network's own when None
    config: object = None
    #: a checkpoint's ``hyper_parameters``, data record (``nerlit_data``) and how far it trained
    #: (``progress``: :func:`~nerlit.models.checkpoint.training_progress`), for model cards
    training: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.config is None and self.network is not None:
            self.config = self.network.config

    @property
    def labels(self) -> list[str]:
        id2label = self.config.id2label
        return [id2label[i] for i in range(len(id2label))]

    @property
    def context(self) -> int:
        return int(self.settings.get("context") or 0)


def quiet_transformers() -> None:
    """No weight-loading progress bars in CLI output: they bury the lines that matter."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_model(
    path: str | Path, tokenizer_dir: str | Path | None = None, backend: str = "auto"
) -> LoadedModel:
    """Load a ``.ckpt`` file or an exported directory; ``tokenizer_dir`` overrides the tokenizer.

    A folder with an ONNX graph (``model.onnx``) gives the graph for ``backend="auto"`` or
    ``"onnx"`` (no torch weights are read); ``"torch"`` needs a folder with torch weights. A Hub
    id ``org/name`` that is not a local path is downloaded into (or, offline, found in) the
    Hugging Face cache and loaded from there.
    """
    path = download_model(str(path)) if is_hub_id(str(path)) else Path(path).expanduser()
    graph = path / ONNX_FILE
    if path.is_dir() and graph.is_file():
        if backend == "torch":
            raise ModelLoadError(
                f"{path} holds an ONNX graph, not torch weights: load it with backend=onnx (or "
                f"auto), or export the checkpoint as a Hugging Face folder for backend=torch"
            )
        config = read_folder_config(path)
        settings = dict(getattr(config, "nerlit", None) or {})
        tokenizer = _tokenizer(tokenizer_dir or path)
        return LoadedModel(None, tokenizer, str(path), settings, onnx=graph, config=config)
    if path.is_dir():
        network = NerNetwork.load(path)
        settings = dict(getattr(network.config, "nerlit", None) or {})
        tokenizer = _tokenizer(tokenizer_dir or path)
        return LoadedModel(network, tokenizer, str(path), settings)
    checkpoint = read_checkpoint(path)
    network = NerNetwork.from_checkpoint(checkpoint, str(path)).eval()
    hparams = checkpoint["hyper_parameters"]
    settings = {key: hparams.get(key) for key in SETTINGS}
    tokenizer = _checkpoint_tokenizer(path, checkpoint, tokenizer_dir)
    training = {
        "hyper_parameters": dict(hparams),
        "data": checkpoint.get(DATA_KEY),
        "progress": training_progress(checkpoint),
    }
    return LoadedModel(network, tokenizer, str(path), settings, training=training)


#: files one of which a tokenizer folder holds (fast: tokenizer.json; WordPiece, BPE and
#: SentencePiece vocabularies otherwise)
TOKENIZER_FILES = (
    "tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
    "tokenizer.model",
)  # fmt: skip


def _tokenizer(folder: str | Path):
    """The folder's tokenizer. A folder without tokenizer files is refused: transformers would
    build one from the config alone, with a vocabulary of its special tokens, and every word
    would be tagged as [UNK] (an export copied without its tokenizer found 1,025 entities where
    there were 4,650)."""
    if Path(folder).is_dir() and not any((Path(folder) / f).is_file() for f in TOKENIZER_FILES):
        raise ModelLoadError(
            f"no tokenizer in {folder} (none of {', '.join(TOKENIZER_FILES)}): copy the exported "
            f"folder whole, or pass the model's own tokenizer folder with tokenizer_dir=DIR"
        )
    try:
        return AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, KeyError, TypeError) as error:  # no or broken tokenizer files
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ModelLoadError(
            f"{folder}: no tokenizer can be loaded from it ({first}); pass the model's own "
            f"tokenizer folder with tokenizer_dir=DIR"
        ) from None


def _checkpoint_tokenizer(path: Path, checkpoint: dict, tokenizer_dir: str | Path | None):
    if tokenizer_dir:
        return _tokenizer(tokenizer_dir)
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

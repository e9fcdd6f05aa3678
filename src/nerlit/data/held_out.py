"""Which sentences a trained model is scored on, and whether it trained on any of them.

Shared by ``nerlit evaluate`` and ``nerlit compare`` (one way to pick a split): the split a
checkpoint recorded (rebuilt from its data settings, checked against its fingerprints), one
standalone file, or a split carved from a data config as training carves it. A checkpoint
records fingerprints of its train sentences; scores on those would flatter the model, so a split
holding them is refused unless the caller allows it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from nerlit.data.corpus import ReadOptions, corpus_from_options, infer_format, load_file
from nerlit.data.datamodule import fingerprint, fingerprint_set
from nerlit.data.schemes import spans, split_tag
from nerlit.data.types import Sentence
from nerlit.errors import DataError, OptionError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_FILES = ("train_file", "val_file", "test_file")
_SPLITTING = ("split_fractions", "split_seed")
_NAME_WHAT = "name what to score with data.test_file=FILE (or data.val_file=FILE) or data=PRESET"


class TrainOverlapError(DataError):
    """The split to score holds sentences the model was trained on."""


@dataclass
class EvalSplit:
    """The gold sentences to score and where they came from (recorded in metrics.json)."""

    name: str
    split: str
    sentences: list[Sentence]
    #: checkpoint (the run's recorded data), file (one standalone file) or config (data=...)
    source: str
    options: dict = field(default_factory=dict)

    def as_record(self) -> dict:
        """Where the sentences came from and how they were read, for metrics.json (no Hydra
        keys, no batch sizes)."""
        kept = {k: self.options.get(k) for k in (*_FILES, *ReadOptions.RULES, *_SPLITTING)}
        shown = {k: v for k, v in kept.items() if v is not None}
        return {"source": self.source, "sentences": len(self.sentences), **shown}


def _corpus_split(options: dict, split: str) -> tuple[str, list[Sentence]]:
    corpus, _ = corpus_from_options(options)
    return corpus.name, corpus.splits()[split]


def _data_options(data: DictConfig | None) -> dict:
    if data is None:
        return {}
    try:
        options = OmegaConf.to_container(data, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as error:
        raise OptionError(
            f"data.{error.key} is required: pass it (data.{error.key}=...) or pick a preset "
            f"(data=gmb, data=conll2003)"
        ) from None
    return options


def read_split(data: DictConfig, split: str) -> tuple[str, list[Sentence]]:
    """The corpus name and one split's gold sentences, read with the data config's options."""
    if split not in SPLITS:
        raise OptionError(f"split={split!r}: expected train, val or test")
    return _corpus_split(_data_options(data), split)


def _standalone(options: dict, split: str) -> EvalSplit:
    """One val or test file, no train file: the split is the file's own."""
    files = {s: options.get(f"{s}_file") for s in ("val", "test") if options.get(f"{s}_file")}
    if split not in files:
        if split == "train" or len(files) > 1:
            raise OptionError(
                f"split={split}: no data.{split}_file given (data.train_file, or a preset with "
                f"data=..., carves the splits as training does)"
            )
        (split,) = files
    read = ReadOptions.from_config(options).for_file(files[split])
    sentences, report = load_file(files[split], split, read=read)
    reading = replace(read, scheme=report.scheme).as_record()
    path = str(Path(files[split]).expanduser().resolve())
    scoring = {k: options[k] for k in ("unknown_labels", "reference_types") if k in options}
    options = {f"{split}_file": path, **reading, **scoring}
    return EvalSplit(Path(path).name, split, sentences, "file", options)


def _recorded(record: dict | None, given: dict, split: str, ckpt_path: str) -> EvalSplit:
    """The run's own data settings (with any options given on top), split as training did."""
    if record is None:
        kind = "an exported model folder" if Path(ckpt_path).is_dir() else "a checkpoint"
        raise OptionError(
            f"{ckpt_path} is {kind} with no record of the data it was trained on; {_NAME_WHAT} "
            f"(e.g. data=gmb)"
        )
    options = {**record["config"], **given}
    try:
        name, sentences = _corpus_split(options, split)
    except FileNotFoundError as error:
        raise OptionError(f"the run's data is gone ({error}); {_NAME_WHAT}") from None
    recorded = fingerprint_set(record["fingerprints"].get(split))
    now = {fingerprint(s.words) for s in sentences}
    if not given and split != "train" and now != recorded:
        log.warning(
            "the %s split read from the run's files differs from the one it was tested on "
            "(%d of its %d distinct sentences are new): have the files changed?",
            split,
            len(now - recorded),
            len(now),
        )
    return EvalSplit(name, split, sentences, "checkpoint", options)


def resolve_split(data: DictConfig | None, split: str, record: dict | None, ckpt: str) -> EvalSplit:
    """Which sentences to score: the recorded split, one file, or a split carved as in training.

    The data node of conf/evaluate.yaml holds only nulls until the user sets something, so what
    is set tells the three cases apart; a preset (``data=gmb``) brings a ``_target_``.
    """
    if split not in SPLITS:
        raise OptionError(f"split={split!r}: expected train, val or test")
    options = _data_options(data)
    given = {k: v for k, v in options.items() if v is not None}
    if given.get("train_file"):
        given.setdefault("format", infer_format(given["train_file"]))
        name, sentences = _corpus_split(given, split)
        return EvalSplit(name, split, sentences, "config", given)
    if given.get("val_file") or given.get("test_file"):
        return _standalone(given, split)
    if "_target_" in given:  # a preset with no file of its own (data=conll, data=jsonl)
        raise OptionError(
            "data.train_file is required to carve the splits: pass it (data.train_file=...), "
            "or score one file with data.test_file=FILE"
        )
    return _recorded(record, given, split, ckpt)


def train_overlap(sentences: list[Sentence], record: dict, split: str) -> list[Sentence]:
    """The sentences the model trained on, less text duplicates of the run's own held-out split.

    A random split of a corpus with repeated short sentences (GMB) puts some texts both in train
    and in val/test; those held-out copies were scored by the run itself, so they do not count.
    """
    trained = fingerprint_set(record["fingerprints"].get("train"))
    exempt = set() if split == "train" else fingerprint_set(record["fingerprints"].get(split))
    overlap = []
    for sentence in sentences:
        key = fingerprint(sentence.words)
        if key in trained and key not in exempt:
            overlap.append(sentence)
    return overlap


def check_train_overlap(data: EvalSplit, record: dict | None, allow: bool) -> int | None:
    """How many sentences of the split the model trained on (None: unknown); refuses any."""
    if record is None:
        log.warning("the model keeps no record of its train sentences: overlap not checked")
        return None
    overlap = train_overlap(data.sentences, record, data.split)
    if overlap:
        words = " ".join(overlap[0].words)
        words = words if len(words) <= 60 else words[:57] + "..."
        what = (
            f"the model trained on {len(overlap)} of the {len(data.sentences)} {data.split} "
            f"sentences of {data.name} (the first: {words!r})"
        )
        if not allow:
            own = "test" if data.split == "train" else data.split
            raise TrainOverlapError(
                f"{what}: their scores would flatter it. Score held-out data (with no data "
                f"arguments: the run's own {own} split), or pass allow_train_overlap=true"
            )
        log.warning("%s; scored anyway (allow_train_overlap=true)", what)
    return len(overlap)


def unknown_to_o(sentences: list[Sentence], labels: list[str]) -> tuple[list[Sentence], int]:
    """Words whose type the model does not know tagged O, as ``data.unknown_labels=o`` trains."""
    known = {split_tag(label)[1] for label in labels} - {""}
    out, count = [], 0
    for sentence in sentences:
        tags = tuple(t if t == "O" or split_tag(t)[1] in known else "O" for t in sentence.tags)
        count += sum(a != b for a, b in zip(tags, sentence.tags))
        out.append(replace(sentence, tags=tags) if tags != sentence.tags else sentence)
    return out, count


def split_to_score(
    data: DictConfig | None,
    split: str,
    record: dict | None,
    checkpoint: str,
    labels: list[str],
    allow_train_overlap: bool = False,
) -> tuple[EvalSplit, int | None]:
    """The split a model with ``labels`` is scored on, and how many of its sentences it trained
    on: the one way ``nerlit evaluate`` and ``nerlit compare`` pick and prepare what they tag.

    Resolved by :func:`resolve_split`, refused where the model trained on it
    (:func:`check_train_overlap`); types the model does not know are tagged O where the data
    says ``unknown_labels=o`` (as training did), and are otherwise counted as missed entities,
    with a warning naming them.
    """
    chosen = resolve_split(data, split, record, checkpoint)
    overlap = check_train_overlap(chosen, record, allow_train_overlap)
    sentences = chosen.sentences
    if chosen.options.get("unknown_labels") == "o":
        sentences, mapped = unknown_to_o(sentences, labels)
        if mapped:
            log.warning("%d words had types the model does not know and were tagged O", mapped)
    known = {split_tag(label)[1] for label in labels} - {""}
    unseen = sorted({kind for s in sentences for kind, _, _ in spans(s.tags)} - known)
    if unseen:
        log.warning(
            "types %s are not among the model's labels: all their entities count as missed", unseen
        )
    return replace(chosen, sentences=sentences), overlap

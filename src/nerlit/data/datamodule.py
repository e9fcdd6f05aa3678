"""NerDataModule: corpus files and a tokenizer in, length-grouped padded batches out."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from nerlit.data.cache import cache_key, load_entry, save_entry
from nerlit.data.corpus import CorpusReport, ReadOptions, load_corpus
from nerlit.data.encoding import (
    LengthGroupedBatchSampler,
    SubwordEncoder,
    Window,
    collate_windows,
    resolve_pad_multiple,
    window_limit,
)
from nerlit.data.schemes import iob2_to_bioes
from nerlit.data.types import Corpus, Sentence
from nerlit.errors import DataError

log = logging.getLogger(__name__)

#: bytes per sentence fingerprint: 2^64 values, so unrelated sentences practically never collide
FINGERPRINT_BYTES = 8


def fingerprint(words: Sequence[str]) -> bytes:
    """A sentence's identity by its words alone: the same text in two files or splits matches."""
    return hashlib.blake2b("\t".join(words).encode("utf-8"), digest_size=FINGERPRINT_BYTES).digest()


def fingerprints(sentences: Iterable[Sentence]) -> bytes:
    """The distinct fingerprints of a split, sorted and concatenated.

    One bytes object, 8 bytes a sentence (GMB's train split: ~300 KB), is the most compact
    form a checkpoint can carry; :func:`fingerprint_set` reads it back.
    """
    return b"".join(sorted({fingerprint(s.words) for s in sentences}))


def fingerprint_set(packed: bytes | None) -> set[bytes]:
    """The fingerprints :func:`fingerprints` packed."""
    packed = packed or b""
    return {packed[i : i + FINGERPRINT_BYTES] for i in range(0, len(packed), FINGERPRINT_BYTES)}


def apply_unknown_labels(corpus: Corpus, labels: list[str], policy: str) -> dict[str, int]:
    """A val/test label that train never saw cannot be learned.

    ``policy='error'`` stops before training and lists the labels; ``'o'`` maps such words to O
    and returns the count per split. Either way nothing passes unnoticed.
    """
    if policy not in ("error", "o"):
        raise DataError(f"data.unknown_labels must be 'error' or 'o', got {policy!r}")
    known = set(labels)
    mapped = {}
    for split in ("val", "test"):
        sentences = getattr(corpus, split)
        count = 0
        for i, sentence in enumerate(sentences):
            unknown = [(w, t) for w, t in zip(sentence.words, sentence.tags) if t not in known]
            if not unknown:
                continue
            if policy == "error":
                word, tag = unknown[0]
                raise DataError(
                    f"{split} sentence {sentence.id}: label {tag!r} (word {word!r}) never occurs "
                    f"in train, whose labels are {labels}. Fix the data, or run with "
                    f"data.unknown_labels=o to tag such words O (they are counted)."
                )
            tags = tuple(t if t in known else "O" for t in sentence.tags)
            sentences[i] = replace(sentence, tags=tags)
            count += len(unknown)
        mapped[split] = count
        if count:
            log.warning("%s: %d words had labels unseen in train and were tagged O", split, count)
    return mapped


class NerDataModule(L.LightningDataModule):
    """Owns the splits, the label vocabulary (from train) and the batching policy.

    Reading options are flat (``data.train_file``, ``data.format`` ...) so any corpus is a config
    change; ``gmb`` and ``conll2003`` are presets of them, and ``data=hf`` reads a saved Hugging
    Face dataset (``train_file`` its folder, ``*_split`` its splits, ``token_column`` and
    ``tag_column`` its columns' names). ``context``: subwords of document context on each side
    of a sentence (FLERT; see :mod:`nerlit.data.encoding`), 0 for none.
    """

    def __init__(
        self,
        train_file: str,
        val_file: str | None = None,
        test_file: str | None = None,
        format: str = "conll",
        encoding: str | None = None,
        token_column: int | str = 0,
        tag_column: int | str = -1,
        scheme: str = "auto",
        train_scheme: str = "iob2",
        split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
        split_seed: int = 42,
        unknown_labels: str = "error",
        name: str | None = None,
        tokenizer=None,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        max_length: int | None = None,
        stride: int = 64,
        label_all_subwords: bool = False,
        context: int = 0,
        length_grouping: bool = True,
        max_tokens: int | None = None,
        pad_to_multiple_of: int | str | None = "auto",
        num_workers: int = 0,
        cache: bool = True,
        seed: int = 42,
        reference_types: list[str] | None = None,
        output_dir: str | None = None,
        train_split: str = "train",
        val_split: str | None = "validation",
        test_split: str | None = "test",
    ) -> None:
        super().__init__()
        if train_scheme not in ("iob2", "bioes"):
            raise DataError(f"data.train_scheme must be iob2 or bioes, got {train_scheme!r}")
        self.read_options = ReadOptions(
            format=format,
            encoding=encoding,
            token_column=token_column,
            tag_column=tag_column,
            scheme=scheme,
        )
        self.corpus_options = dict(
            train_file=train_file,
            val_file=val_file,
            test_file=test_file,
            split_fractions=split_fractions,
            split_seed=split_seed,
            name=name,
            train_split=train_split,
            val_split=val_split,
            test_split=test_split,
        )
        self.train_scheme = train_scheme
        self.unknown_labels = unknown_labels
        # what besides the corpus options shaped the run's inputs and scores (for data_record)
        self.run_options = dict(
            train_scheme=train_scheme,
            unknown_labels=unknown_labels,
            max_length=max_length,
            stride=stride,
            label_all_subwords=label_all_subwords,
            context=context,
            reference_types=list(reference_types or []),
        )
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.max_length = max_length
        self.stride = stride
        self.label_all_subwords = label_all_subwords
        self.context = context
        self.length_grouping = length_grouping
        self.max_tokens = max_tokens
        resolve_pad_multiple(pad_to_multiple_of, "cpu")  # a bad value stops here, not mid-run
        self.pad_to_multiple_of = pad_to_multiple_of
        #: where batches run when no Trainer is attached (a bare loop sets "cuda")
        self.device_type = "cpu"
        self.num_workers = num_workers
        self.cache = cache
        self.seed = seed
        self.reference_types = list(reference_types or [])
        self.output_dir = output_dir
        self.corpus: Corpus | None = None
        self.report: CorpusReport | None = None
        self.labels: list[str] = []
        self.windows: dict[str, list[Window]] = {}
        self.windowed: dict[str, int] = {}
        self.with_context: dict[str, int] = {}
        self.mapped_unknown: dict[str, int] = {}

    def settings(self) -> dict:
        """Every data setting that shapes the run's splits, inputs and scores, flat as the
        ``data.*`` keys: what the corpus cache is keyed by and the run records."""
        return {**self.corpus_options, **self.read_options.as_record(), **self.run_options}

    def window_limit(self) -> int:
        """The encoder's window: the configured max_length, else the tokenizer's own limit."""
        limit = window_limit(self.tokenizer)
        return min(self.max_length or limit, limit)

    def make_encoder(self) -> SubwordEncoder:
        return SubwordEncoder(
            self.tokenizer,
            self.window_limit(),
            self.stride,
            self.label_all_subwords,
            context=self.context,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.corpus is not None:
            return
        if self.tokenizer is None:
            raise DataError("NerDataModule needs a tokenizer (train.py passes the model's)")
        limit = self.window_limit()
        if self.max_tokens is not None and self.max_tokens < limit:
            raise DataError(
                f"data.max_tokens={self.max_tokens} is below the {limit}-subword window, so a "
                f"batch could not hold one long window: set data.max_tokens to at least {limit} "
                f"(or lower data.max_length), or null for batches of data.batch_size windows"
            )
        if self.max_tokens is not None and not self.length_grouping:
            raise DataError(
                f"data.max_tokens={self.max_tokens} with data.length_grouping=false: token-budget "
                "batches are cut from windows in length order, so set data.length_grouping=true "
                "or data.max_tokens=null (batches of data.batch_size random windows)"
            )
        options = {**self.settings(), "window": limit}
        key = cache_key(options, self.tokenizer) if self.cache else None
        entry = load_entry(key) if key else None
        if entry is not None:
            self.restore(entry)
        else:
            self.read_and_encode()
            if key:
                save_entry(key, self.cached_state())
        if self.output_dir:
            self.save_split(Path(self.output_dir))

    def restore(self, entry: dict) -> None:
        """The state :meth:`read_and_encode` left, from the corpus cache."""
        self.corpus, self.windows = entry["corpus"], entry["windows"]
        self.report = CorpusReport(**entry["report"])
        self.labels, self.mapped_unknown = entry["labels"], entry["mapped_unknown"]
        self.windowed, self.with_context = entry["windowed"], entry["with_context"]
        log.info(
            "corpus read from the cache %s (same files, options and tokenizer): %s; "
            "data.cache=false reads it again",
            entry["folder"],
            ", ".join(
                f"{split} {len(sentences)} sentences, {len(self.windows[split])} windows"
                for split, sentences in self.corpus.splits().items()
            ),
        )

    def cached_state(self) -> dict:
        return {
            "corpus": self.corpus,
            "report": asdict(self.report),
            "labels": self.labels,
            "mapped_unknown": self.mapped_unknown,
            "windows": self.windows,
            "windowed": self.windowed,
            "with_context": self.with_context,
        }

    def read_and_encode(self) -> None:
        """Read the corpus files, fix the labels and cut every split into windows."""
        corpus, self.report = load_corpus(**self.corpus_options, read=self.read_options)
        self.labels = corpus.labels(self.train_scheme)
        self.mapped_unknown = apply_unknown_labels(corpus, corpus.labels(), self.unknown_labels)
        label2id = {label: i for i, label in enumerate(self.labels)}
        encoder = self.make_encoder()
        for split, sentences in corpus.splits().items():
            if self.train_scheme == "bioes":
                sentences = [replace(s, tags=tuple(iob2_to_bioes(s.tags))) for s in sentences]
            self.windows[split] = encoder.encode(sentences, label2id)
            per_sentence = Counter(w.sentence_index for w in self.windows[split])
            self.windowed[split] = sum(1 for n in per_sentence.values() if n > 1)
            log.info(
                "%s: %d sentences, %d words, %d windows; %d sentences longer than the "
                "%d-subword window were split into overlapping windows",
                split,
                len(sentences),
                sum(map(len, sentences)),
                len(self.windows[split]),
                self.windowed[split],
                encoder.budget + 2,
            )
            self.log_context(split, sentences)
        self.corpus = corpus

    def log_context(self, split: str, sentences: Sequence[Sentence]) -> None:
        """How many sentences of a split got document context: zero is worth a warning."""
        if not self.context:
            return
        self.with_context[split] = sum(1 for w in self.windows[split] if any(w.context_tokens))
        if not any(s.document for s in sentences):
            log.warning(
                "%s: data.context=%d but no sentence belongs to a document (CoNLL files mark "
                "documents with -DOCSTART- or # newdoc lines, JSONL records with a 'document' "
                "key): no context",
                split,
                self.context,
            )
        log.info(
            "%s: %d of %d sentences got document context (up to %d subwords each side)",
            split,
            self.with_context[split],
            len(sentences),
            self.context,
        )

    def save_split(self, directory: Path) -> None:
        """Record which sentences went where, the label set and what reading did."""
        directory.mkdir(parents=True, exist_ok=True)
        split = {k: [s.id for s in v] for k, v in self.corpus.splits().items()}
        split["sources"] = self.corpus.sources
        split["report"] = {
            **asdict(self.report),
            "unknown_labels_mapped_to_o": self.mapped_unknown,
            "windowed_sentences": self.windowed,
            "sentences_with_context": self.with_context,
        }
        (directory / "split.json").write_text(json.dumps(split))
        (directory / "labels.json").write_text(json.dumps(self.labels, indent=1))

    def data_record(self) -> dict:
        """What a checkpoint keeps of its data, so ``nerlit.evaluate`` can score the run's own
        held-out split and refuse sentences the model trained on.

        ``config``: every option that decides which sentences land in which split and how they
        are read and windowed, with file paths made absolute (a run's relative paths meant the
        directory it ran in). ``fingerprints``: per split, the packed :func:`fingerprints` of its
        sentences; ``sizes``: sentences per split.
        """
        if self.corpus is None:
            raise RuntimeError("data_record() needs the splits: call setup() first")
        config = self.settings()
        for key in ("train_file", "val_file", "test_file"):
            if config[key]:
                config[key] = str(Path(config[key]).expanduser().resolve())
        config["split_fractions"] = list(config["split_fractions"])
        config["name"] = self.corpus.name
        splits = self.corpus.splits()
        return {
            "config": config,
            "fingerprints": {split: fingerprints(s) for split, s in splits.items()},
            "sizes": {split: len(s) for split, s in splits.items()},
        }

    def sentences(self, split: str) -> list[Sentence]:
        """Gold IOB2 sentences of a split: what evaluation scores against."""
        return getattr(self.corpus, split)

    def pad_multiple(self) -> int | None:
        """``pad_to_multiple_of`` resolved for the device the batches run on."""
        trainer = self.trainer
        device = trainer.strategy.root_device.type if trainer is not None else self.device_type
        return resolve_pad_multiple(self.pad_to_multiple_of, device)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        windows = self.windows[split]
        multiple, limit = self.pad_multiple(), self.window_limit()
        sampler = LengthGroupedBatchSampler(
            [len(w) for w in windows],
            self.batch_size if shuffle else self.eval_batch_size,
            shuffle=shuffle,
            seed=self.seed,
            group_by_length=self.length_grouping,
            max_tokens=self.max_tokens,
            pad_to_multiple_of=multiple,
            limit=limit,
        )
        pad_id = self.tokenizer.pad_token_id or 0
        return DataLoader(
            windows,
            batch_sampler=sampler,
            collate_fn=partial(
                collate_windows, pad_id=pad_id, pad_to_multiple_of=multiple, limit=limit
            ),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

"""NerDataModule: a corpus reader and a tokenizer in, length-grouped padded batches out."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from nerlit.data.encoding import (
    LengthGroupedBatchSampler,
    SubwordEncoder,
    Window,
    collate_windows,
)
from nerlit.data.types import Corpus, Sentence

log = logging.getLogger(__name__)


def check_labels(corpus: Corpus, labels: list[str]) -> None:
    """A val/test label that train never saw cannot be learned: stop before training, say where."""
    known = set(labels)
    for split in ("val", "test"):
        for sentence in getattr(corpus, split):
            for word, tag in zip(sentence.words, sentence.tags):
                if tag not in known:
                    raise ValueError(
                        f"{split} sentence {sentence.id!r}: label {tag!r} (word {word!r}) never "
                        f"occurs in train, whose labels are {labels}. Fix the data, or give train "
                        f"examples of it."
                    )


class NerDataModule(L.LightningDataModule):
    """Owns the splits, the label vocabulary (from train) and the batching policy.

    ``reader`` is a zero-argument factory (a Hydra ``_partial_``) returning a :class:`Corpus`, so
    reading happens in ``setup`` and the config alone decides which corpus is used.
    """

    def __init__(
        self,
        reader: Callable[[], Corpus],
        tokenizer=None,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        max_length: int | None = None,
        stride: int = 64,
        label_all_subwords: bool = False,
        num_workers: int = 0,
        seed: int = 42,
        reference_types: list[str] | None = None,
        output_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.reader = reader
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.max_length = max_length
        self.stride = stride
        self.label_all_subwords = label_all_subwords
        self.num_workers = num_workers
        self.seed = seed
        self.reference_types = list(reference_types or [])
        self.output_dir = output_dir
        self.corpus: Corpus | None = None
        self.labels: list[str] = []
        self.windows: dict[str, list[Window]] = {}

    def window_limit(self) -> int:
        """The encoder's window: the configured max_length, else the tokenizer's own limit."""
        limit = self.tokenizer.model_max_length
        if limit is None or limit > 100_000:  # tokenizers without a limit report a huge sentinel
            limit = 512
        return min(self.max_length or limit, limit)

    def setup(self, stage: str | None = None) -> None:
        if self.corpus is not None:
            return
        if self.tokenizer is None:
            raise ValueError("NerDataModule needs a tokenizer (train.py passes the model's)")
        corpus = self.reader()
        self.labels = corpus.labels()
        check_labels(corpus, self.labels)
        label2id = {label: i for i, label in enumerate(self.labels)}
        encoder = SubwordEncoder(
            self.tokenizer, self.window_limit(), self.stride, self.label_all_subwords
        )
        for split, sentences in corpus.splits().items():
            self.windows[split] = encoder.encode(sentences, label2id)
            extra = len(self.windows[split]) - len(sentences)
            log.info(
                "%s: %d sentences, %d words, %d windows (%d extra from long sentences)",
                split,
                len(sentences),
                sum(map(len, sentences)),
                len(self.windows[split]),
                extra,
            )
        self.corpus = corpus
        if self.output_dir:
            self.save_split(Path(self.output_dir))

    def save_split(self, directory: Path) -> None:
        """Record which sentences went where and the label set, so a run can be re-scored."""
        directory.mkdir(parents=True, exist_ok=True)
        split = {k: [s.id for s in v] for k, v in self.corpus.splits().items()}
        split["sources"] = self.corpus.sources
        (directory / "split.json").write_text(json.dumps(split))
        (directory / "labels.json").write_text(json.dumps(self.labels, indent=1))

    def sentences(self, split: str) -> list[Sentence]:
        return getattr(self.corpus, split)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        windows = self.windows[split]
        sampler = LengthGroupedBatchSampler(
            [len(w) for w in windows],
            self.batch_size if shuffle else self.eval_batch_size,
            shuffle=shuffle,
            seed=self.seed,
        )
        return DataLoader(
            windows,
            batch_sampler=sampler,
            collate_fn=partial(collate_windows, pad_id=self.tokenizer.pad_token_id or 0),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

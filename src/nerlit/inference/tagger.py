"""Tagger: raw texts in, entities with character offsets out, fast on CPU.

Speed comes from doing per text only what must be per text. Words are tokenized once per
distinct word (``SubwordEncoder``'s cache), windows of all texts are sorted by length so batches
carry almost no padding, the model runs under ``inference_mode``, and label probabilities are
gathered, normalised and decoded for all words at once rather than per example. Long texts go
through the same overlapping windows as training, so nothing is truncated.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from nerlit.data.encoding import SubwordEncoder, collate_windows, window_limit
from nerlit.data.types import Entity, Sentence
from nerlit.data.words import join_words, split_words
from nerlit.errors import OptionError
from nerlit.inference.loading import LoadedModel, load_model
from nerlit.inference.spans import entities_from_tags
from nerlit.models.decoding import DECODERS, words_from_windows

TextInput = str | Sequence[str]
PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (CPU: AVX512-BF16/AMX via oneDNN; most GPUs)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


class Tagger:
    """Tag texts with a trained model: ``Tagger.load(path).predict(["Obama visited Paris."])``.

    Decoding is the network's own (:func:`nerlit.models.decoding.decode_words`), as in training:
    ``decode=None`` (default) decodes as the model was validated in training (``model.decode``).
    ``decode="constrained"`` returns the best *valid* tag sequence (Viterbi; with a
    CRF head, under its learned transitions); ``decode="argmax"`` labels each word by its first
    subword's best label, a stray ``I-X`` then starting an entity, as the Hugging Face pipeline
    with ``aggregation_strategy="first"`` does, and reproduces its entities.

    ``precision="bf16"`` runs the encoder under bfloat16 autocast, the numerics of nerlit's
    default ``bf16-mixed`` training: ~1.6x faster on CPUs with native bf16 (AVX512-BF16, AMX) and
    on GPUs, and on MiniLM/GMB 0.5% of sentences get some word labelled differently than in fp32.
    ``fp32`` is exact and the same on every machine (and equal to the pipeline's). The default
    ``auto`` is bf16 where the device computes bf16 natively, else fp32.

    A model trained with document context (``data.context``) gets the same context here when
    :meth:`predict_tags` is told the sentences' documents; without them each sentence is tagged
    alone, as every text given to :meth:`predict` is.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        decode: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        stride: int | None = None,
        device: str | None = None,
        precision: str = "auto",
    ) -> None:
        decode = decode or loaded.settings.get("decode") or "constrained"
        if decode not in DECODERS:
            raise OptionError(f"decode={decode!r} is not one of {DECODERS}")
        if precision not in PRECISIONS:
            raise OptionError(f"precision={precision!r} is not one of {PRECISIONS}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.precision = precision
        if precision == "auto":
            self.precision = "bf16" if native_bf16(self.device) else "fp32"
        self.network = loaded.network.to(self.device).eval()
        self.tokenizer = loaded.tokenizer
        self.labels = list(loaded.labels)
        self.source = loaded.source
        self.decode = decode
        self.batch_size = batch_size
        # windows as in training unless given: a long sentence's predictions depend on them
        limit = window_limit(self.tokenizer, self.network.config)
        self.max_length = min(max_length or loaded.settings.get("max_length") or limit, limit)
        self.stride = stride or loaded.settings.get("stride") or 64
        self.context = loaded.context
        self.settings = loaded.settings
        self.pad_id = self.tokenizer.pad_token_id or 0

    @classmethod
    def load(
        cls,
        path: str | Path,
        decode: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        stride: int | None = None,
        device: str | None = None,
        precision: str = "auto",
        tokenizer_dir: str | Path | None = None,
    ) -> Tagger:
        """From a nerlit ``.ckpt`` or a folder written by ``python -m nerlit.export``."""
        loaded = load_model(path, tokenizer_dir)
        return cls(loaded, decode, batch_size, max_length, stride, device, precision)

    @classmethod
    def from_config(cls, cfg) -> Tagger:
        """The Tagger a predict/evaluate config names (``conf/predict.yaml`` keys)."""
        if cfg.get("threads"):
            torch.set_num_threads(int(cfg.threads))
        return cls.load(
            cfg.ckpt_path,
            decode=cfg.decode,
            batch_size=cfg.batch_size,
            max_length=cfg.max_length,
            stride=cfg.stride,
            device=cfg.device,
            precision=cfg.precision,
            tokenizer_dir=cfg.tokenizer_dir,
        )

    # -- the public API --

    def predict(self, texts: TextInput | Sequence[TextInput]) -> list[list[Entity]]:
        """Entities per text, in input order.

        A text is a raw string (split into words by :mod:`nerlit.data.words`) or a list of
        words (offsets then refer to the words joined by single spaces). A lone string is a batch
        of one; a lone word list must be wrapped (``predict([["Obama", "spoke"]])``), since a
        list of strings means a batch of raw texts. Texts are independent, so none is context
        for another, even for a model trained with document context.
        """
        if isinstance(texts, str):
            texts = [texts]
        spans, strings = [], []
        for text in texts:
            if isinstance(text, str):
                spans.append(split_words(text))
                strings.append(text)
            else:
                joined, words = join_words(list(text))
                spans.append(words)
                strings.append(joined)
        word_lists = [[w for w, _, _ in words] for words in spans]
        tags, probs = self.network.decode(self.word_logits(word_lists), self.decode)
        return [
            entities_from_tags(t, p, words, text)
            for t, p, words, text in zip(tags, probs, spans, strings)
        ]

    def predict_tags(
        self,
        sentences: Sequence[Sequence[str]],
        documents: Sequence[str | None] | None = None,
    ) -> list[list[str]]:
        """One well-formed IOB2 tag per word of each pre-split sentence (CoNLL output, scoring).

        ``documents``: a document id per sentence (None: no document). Adjacent sentences with
        the same id are each other's context, as in training, for a model trained with
        ``data.context``; pass them to reproduce its test scores.
        """
        word_lists = [list(s) for s in sentences]
        return self.network.decode(self.word_logits(word_lists, documents), self.decode)[0]

    # -- the machinery --

    @torch.inference_mode()
    def word_logits(
        self,
        word_lists: Sequence[Sequence[str]],
        documents: Sequence[str | None] | None = None,
    ) -> list[torch.Tensor]:
        """Per sentence, [words, labels] logits at each word's first subword, windows merged."""
        if documents is None:
            documents = [None] * len(word_lists)
        if len(documents) != len(word_lists):
            raise OptionError(
                f"{len(documents)} documents for {len(word_lists)} sentences: give one per sentence"
            )
        # a fresh encoder per call: its word cache must not grow for the life of a server
        encoder = SubwordEncoder(self.tokenizer, self.max_length, self.stride, context=self.context)
        sentences = [
            Sentence(tuple(w), ("O",) * len(w), document=d) for w, d in zip(word_lists, documents)
        ]
        windows = encoder.encode(sentences, {"O": 0})
        windows = [w for w in windows if any(i >= 0 for i in w.word_index)]  # drop empty texts
        windows.sort(key=len, reverse=True)
        autocast = torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        )
        rows: list[tuple[torch.Tensor, ...]] = []
        for b in range(0, len(windows), self.batch_size):
            batch = collate_windows(windows[b : b + self.batch_size], self.pad_id)
            with autocast:
                logits = self.network(
                    batch["input_ids"].to(self.device),
                    batch["attention_mask"].to(self.device),
                    batch["casing_ids"].to(self.device)
                    if self.network.casing is not None
                    else None,
                )
            owned = batch["word_index"] >= 0
            sentence = batch["sentence_index"].unsqueeze(1).expand_as(owned)
            rows.append(
                (
                    sentence[owned],
                    batch["word_index"][owned],
                    logits[owned.to(self.device)].float().cpu(),
                )
            )
        lengths = [len(words) for words in word_lists]
        if not rows:
            return [torch.empty(n, len(self.labels)) for n in lengths]
        flat = [torch.cat(parts) for parts in zip(*rows)]
        logits, written = words_from_windows(*flat, lengths, fill=float("nan"))
        if not all(bool(w.all()) for w in written):  # every word is owned by exactly one window
            raise RuntimeError("some words got no prediction: a windowing bug, please report it")
        return logits

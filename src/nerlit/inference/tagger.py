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
from nerlit.data.types import Sentence
from nerlit.data.words import join_words, split_words
from nerlit.inference.loading import LoadedModel, OptionError, load_model
from nerlit.inference.spans import (
    ALIASES,
    DECODERS,
    Entity,
    entities_from_tags,
    iob2_tags,
    transition_scores,
    viterbi,
)

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

    ``decode="constrained"`` (default) returns the best *valid* tag sequence (Viterbi; with a
    CRF head, under its learned transitions); ``decode="argmax"`` labels each word by its first
    subword's best label, as the Hugging Face pipeline with ``aggregation_strategy="first"``
    does, and reproduces its entities.

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
        decode: str = "constrained",
        batch_size: int = 32,
        max_length: int | None = None,
        stride: int = 64,
        device: str | None = None,
        precision: str = "auto",
    ) -> None:
        decode = ALIASES.get(decode, decode)
        if decode not in DECODERS:
            raise OptionError(f"decode={decode!r} is not one of {DECODERS}")
        if precision not in PRECISIONS:
            raise OptionError(f"precision={precision!r} is not one of {PRECISIONS}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.precision = precision
        if precision == "auto":
            self.precision = "bf16" if native_bf16(self.device) else "fp32"
        self.model = loaded.model.to(self.device).eval()
        self.tokenizer = loaded.tokenizer
        self.labels = list(loaded.labels)
        self.source = loaded.source
        self.decode = decode
        self.batch_size = batch_size
        limit = window_limit(self.tokenizer, self.model.config)
        self.max_length = min(max_length or limit, limit)
        self.stride = stride
        self.crf = loaded.crf
        self.context = loaded.context
        self.casing = None if loaded.casing is None else loaded.casing.to(self.device)
        self.transitions = transition_scores(self.labels, loaded.crf)
        self.pad_id = self.tokenizer.pad_token_id or 0

    @classmethod
    def load(
        cls,
        path: str | Path,
        decode: str = "constrained",
        batch_size: int = 32,
        max_length: int | None = None,
        stride: int = 64,
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
        tags, probs = self._tag_ids(word_lists)
        return [
            entities_from_tags([self.labels[y] for y in ids], p, words, text)
            for ids, p, words, text in zip(tags, probs, spans, strings)
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
        tags, probs = self._tag_ids(word_lists, documents)
        out = []
        for words, ids, p in zip(word_lists, tags, probs):
            _, offsets = join_words(words)
            entities = entities_from_tags([self.labels[y] for y in ids], p, offsets, "")
            out.append(iob2_tags(entities, len(words)))
        return out

    # -- the machinery --

    @torch.inference_mode()
    def word_log_probs(
        self,
        word_lists: Sequence[Sequence[str]],
        documents: Sequence[str | None] | None = None,
    ) -> list[torch.Tensor]:
        """Per sentence, a [words, labels] tensor of log-probabilities at each first subword."""
        if documents is None:
            documents = [None] * len(word_lists)
        if len(documents) != len(word_lists):
            raise OptionError(
                f"{len(documents)} documents for {len(word_lists)} sentences: give one per sentence"
            )
        lengths = [len(words) for words in word_lists]
        offsets = torch.tensor([0, *lengths]).cumsum(0)
        flat = torch.full((int(offsets[-1]), len(self.labels)), float("nan"))
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
        for b in range(0, len(windows), self.batch_size):
            batch = collate_windows(windows[b : b + self.batch_size], self.pad_id)
            with autocast:
                logits = self.model(
                    **self._inputs(batch), attention_mask=batch["attention_mask"].to(self.device)
                ).logits
            owned = batch["word_index"] >= 0
            rows = (offsets[batch["sentence_index"]].unsqueeze(1) + batch["word_index"])[owned]
            flat[rows] = torch.log_softmax(logits[owned.to(self.device)].float(), dim=-1).cpu()
        if flat[:, 0].isnan().any():  # every word is owned by one window: none may be left
            raise RuntimeError("some words got no prediction: a windowing bug, please report it")
        return list(flat.split(lengths))

    def _inputs(self, batch: dict) -> dict[str, torch.Tensor]:
        """Token ids, or for a model trained with casing features, embeddings plus casings."""
        input_ids = batch["input_ids"].to(self.device)
        if self.casing is None:
            return {"input_ids": input_ids}
        embeds = self.model.get_input_embeddings()(input_ids)
        return {"inputs_embeds": embeds + self.casing[batch["casing_ids"].to(self.device)]}

    def _tag_ids(
        self,
        word_lists: Sequence[Sequence[str]],
        documents: Sequence[str | None] | None = None,
    ) -> tuple[list[list[int]], list[list[float]]]:
        """Decoded label ids per word, and the probability of each chosen label."""
        log_probs = self.word_log_probs(word_lists, documents)
        if self.decode == "argmax":
            ids = [lp.argmax(-1) for lp in log_probs]
        else:
            ids = [torch.tensor(p, dtype=torch.long) for p in viterbi(log_probs, *self.transitions)]
        probs = [
            lp.gather(1, i.view(-1, 1)).squeeze(1).exp().tolist() if len(i) else []
            for lp, i in zip(log_probs, ids)
        ]
        return [i.tolist() for i in ids], probs

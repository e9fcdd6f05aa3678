"""Tagger: raw texts in, entities with character offsets out, fast on CPU.

Speed comes from doing per text only what must be per text. Words are tokenized once per
distinct word (``SubwordEncoder``'s cache), windows of all texts are sorted by length so batches
carry almost no padding, the model runs under ``inference_mode``, and label probabilities are
gathered, normalised and decoded for all words at once rather than per example. Long texts go
through the same overlapping windows as training, so nothing is truncated.

The network runs on a backend (:mod:`nerlit.inference.backends`): PyTorch, or ONNX Runtime on a
graph from ``nerlit export format=onnx``. Windows, merging, decoding and spans are this one code
path on top of either. Where the backend runs several batches at once (ONNX Runtime on CPU),
``Tagger`` hands them to a thread pool of that size, and splits a small call's windows so that
every thread gets a batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import ClassVar

import torch

from nerlit.data.encoding import (
    SubwordEncoder,
    collate_windows,
    padded_width,
    resolve_pad_multiple,
    window_limit,
)
from nerlit.data.types import Entity, Sentence
from nerlit.data.words import join_words, split_words
from nerlit.errors import OptionError
from nerlit.inference.backends import BACKENDS, create_backend, native_bf16
from nerlit.inference.loading import LoadedModel, load_model
from nerlit.inference.spans import entities_from_tags
from nerlit.models.decoding import DECODERS, decode_words, words_from_windows
from nerlit.options import Options, Rule, integer, one_of, pad_multiple, window_length

TextInput = str | Sequence[str]
PRECISIONS = ("auto", "fp32", "bf16")
__all__ = ["BACKENDS", "PRECISIONS", "Tagger", "TaggerOptions", "TextInput", "native_bf16"]


#: ``pad_to_multiple_of=auto`` on a CPU. Exact padding makes nearly every batch a new shape, and
#: oneDNN keeps what it builds for each: tagging 200 MB grew past 1 GB. A multiple of 8 keeps
#: the shapes few (memory flat) for ~7% of MiniLM's fp32 tagging speed (docs/results.md, "Bad
#: input, before and after"). Training keeps exact padding on a CPU: it sees each length again every
#: epoch, and its padding would be paid for forward and backward.
CPU_TAGGING_PAD_MULTIPLE = 8


@dataclass(frozen=True)
class TaggerOptions(Options):
    """How a trained model is run: every option of :meth:`Tagger.load`, listed once with its rule.

    ``nerlit predict``, ``nerlit evaluate`` and ``nerlit serve`` read them from their configs
    (``conf/tagger/default.yaml``) with :meth:`from_config`, and the config checks take their
    keys, types and rules from here: a new option is this field, its rule and its config default.
    """

    RULES: ClassVar[Mapping[str, Rule]] = {
        "decode": one_of(DECODERS, null="as the run validated"),
        "batch_size": integer(1),
        "max_length": window_length(null="the run's"),
        "stride": integer(0, null="the run's"),
        "precision": one_of(PRECISIONS),
        "backend": one_of(BACKENDS),
        "concurrent_batches": integer(1, null="the backend's choice"),
        "pad_to_multiple_of": pad_multiple("8 on a CPU, 32 on a GPU"),
    }
    ERROR: ClassVar[type[Exception]] = OptionError

    #: null: as the run validated (its model.decode); constrained | argmax
    decode: str | None = None
    #: windows per forward pass
    batch_size: int = 32
    #: null: the run's windows (longer texts become overlapping windows)
    max_length: int | None = None
    stride: int | None = None
    #: null: cuda when available, else cpu
    device: str | None = None
    #: auto | fp32 | bf16
    precision: str = "auto"
    #: auto | torch | onnx
    backend: str = "auto"
    #: batches run at once; null: the backend's choice
    concurrent_batches: int | None = None
    #: windows of a batch padded to a multiple of this; auto: 8 on a CPU, 32 on a GPU; 1: exact
    pad_to_multiple_of: int | str = "auto"
    #: only for a checkpoint whose tokenizer is neither embedded nor in its run folder any more
    tokenizer_dir: str | None = None


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

    ``backend="auto"`` (default) runs a folder written by ``nerlit export format=onnx`` with
    ONNX Runtime (its precision is the graph's: fp32, or int8 weights) and anything else with
    PyTorch; ``"torch"`` or ``"onnx"`` insist. Every backend gets the same windows, decoder and
    spans, so all of the above holds for each (``tests/test_onnx.py`` compares their tags).

    ``concurrent_batches``: batches run at once, each on its share of the threads; ``None``
    (default) is the backend's choice: one per thread for ONNX Runtime on CPU (faster than one
    batch on all threads, see :class:`~nerlit.inference.backends.OnnxBackend`), else 1.
    """

    def __init__(self, loaded: LoadedModel, options: TaggerOptions | None = None) -> None:
        options = options or TaggerOptions()
        decode = options.decode or loaded.settings.get("decode") or "constrained"
        max_length, stride = options.max_length, options.stride
        backend = create_backend(
            loaded, options.backend, options.device, options.precision, options.concurrent_batches
        )
        self.options = options
        self.backend = backend
        at_once = self.backend.concurrent_batches  # threads start at the first use, not here
        self._pool = ThreadPoolExecutor(at_once, "nerlit-batch") if at_once > 1 else None
        self.device = self.backend.device
        self.precision = self.backend.precision
        self.tokenizer = loaded.tokenizer
        self.labels = list(loaded.labels)
        self.source = loaded.source
        self.decode = decode
        self.batch_size = options.batch_size
        # windows as in training unless given: a long sentence's predictions depend on them
        limit = window_limit(self.tokenizer, loaded.config)
        if max_length is None:
            max_length = loaded.settings.get("max_length") or limit
        self.max_length = min(max_length, limit)
        specials = sum(
            a is not None or b is not None
            for a, b in (
                (self.tokenizer.cls_token_id, self.tokenizer.bos_token_id),
                (self.tokenizer.sep_token_id, self.tokenizer.eos_token_id),
            )
        )
        if self.max_length < specials + 2:
            raise OptionError(
                f"max_length={max_length}: a window needs {specials} special tokens and room for "
                f"2 subwords; give max_length >= {specials + 2} (this encoder takes up to {limit})"
            )
        if stride is None:
            stride = loaded.settings.get("stride")
        self.stride = 64 if stride is None else stride
        self.context = loaded.context
        self.settings = loaded.settings
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.pad_multiple = resolve_pad_multiple(
            options.pad_to_multiple_of, self.device.type, cpu_auto=CPU_TAGGING_PAD_MULTIPLE
        )

    @classmethod
    def load(
        cls, path: str | Path, options: TaggerOptions | None = None, **option_values
    ) -> Tagger:
        """From a nerlit ``.ckpt`` or a folder written by ``nerlit export`` (a Hugging Face
        folder, or an ONNX graph with ``format=onnx``), local or pushed to the Hub: ``org/name``
        that is no local path comes through the Hugging Face cache (offline: the cached copy).

        Options as :class:`TaggerOptions` or as keywords (``Tagger.load(path, decode="argmax")``),
        the keywords replacing the object's values."""
        unknown = sorted(set(option_values) - {f.name for f in fields(TaggerOptions)})
        if unknown:
            raise OptionError(
                f"Tagger.load has no option {', '.join(unknown)}; its options: "
                f"{', '.join(f.name for f in fields(TaggerOptions))}"
            )
        options = replace(options or TaggerOptions(), **option_values)
        loaded = load_model(path, options.tokenizer_dir, options.backend)
        return cls(loaded, options)

    @classmethod
    def from_config(cls, cfg) -> Tagger:
        """The Tagger a predict, evaluate or serve config names (``conf/tagger/default.yaml``)."""
        if cfg.get("threads"):
            torch.set_num_threads(int(cfg.threads))
        return cls.load(cfg.ckpt_path, TaggerOptions.from_config(cfg))

    @property
    def network(self):
        """The torch network (``backend="torch"``); None on ONNX Runtime."""
        return getattr(self.backend, "network", None)

    # -- the public API --

    def predict(self, texts: TextInput | Sequence[TextInput]) -> list[list[Entity]]:
        """Entities per text, in input order.

        A text is a raw string (split into words by :mod:`nerlit.data.words`) or a list of
        words (offsets then refer to the words joined by single spaces). A lone string is a batch
        of one; a lone word list must be wrapped (``predict([["Obama", "spoke"]])``), since a
        list of strings means a batch of raw texts. Texts are independent, so none is context
        for another, even for a model trained with document context.

        Blank pre-split words (empty or whitespace only) are absent to the model and never start,
        end or make up an entity; ``word_start``/``word_end`` still index the words given.
        Anything else than a str or a list of str, and lone surrogates, raise a ``TypeError`` or
        ``ValueError`` naming the item (``texts[3]``, ``texts[3][1]``).
        """
        if isinstance(texts, str):
            texts = [texts]
        _check_batch(texts, "texts")
        spans, strings = [], []
        for i, text in enumerate(texts):
            if isinstance(text, str):
                _check_text(text, f"texts[{i}]")
                spans.append(split_words(text))
                strings.append(text)
            elif _is_word_list(text):
                _check_words(text, f"texts[{i}]")
                joined, words = join_words(list(text))
                spans.append(words)
                strings.append(joined)
            else:
                raise TypeError(
                    f"texts[{i}] is {_kind(text)}: expected a str (a raw text) or a list of words"
                )
        kept = [_present(w for w, _, _ in words) for words in spans]
        present = [[words[i] for i in k] for words, k in zip(spans, kept)]
        tags, probs = self.decode_logits(self.word_logits([[w for w, _, _ in p] for p in present]))
        return [
            [
                replace(e, word_start=k[e.word_start], word_end=k[e.word_end - 1] + 1)
                for e in entities_from_tags(t, p, words, text)
            ]
            for t, p, words, text, k in zip(tags, probs, present, strings, kept)
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

        Blank words (empty or whitespace only) are absent to the model, as in :meth:`predict`
        (where they are never part of an entity's ends): each gets ``O``, or ``I-X`` where it
        sits between two words of one X entity, so the tags stay valid IOB2, one per word.
        """
        _check_batch(sentences, "sentences")
        for i, words in enumerate(sentences):
            if not _is_word_list(words):
                hint = " (predict takes raw texts)" if isinstance(words, str) else ""
                raise TypeError(
                    f"sentences[{i}] is {_kind(words)}: predict_tags takes lists of words{hint}"
                )
            _check_words(words, f"sentences[{i}]")
        kept = [_present(words) for words in sentences]
        present = [[words[i] for i in k] for words, k in zip(sentences, kept)]
        tags, _ = self.decode_logits(self.word_logits(present, documents))
        return [_with_blanks(t, k, len(words)) for t, k, words in zip(tags, kept, sentences)]

    def decode_logits(
        self, word_logits: Sequence[torch.Tensor]
    ) -> tuple[list[list[str]], list[list[float]]]:
        """IOB2 tags and their probabilities per word, by the one decoder (a CRF head's learned
        transitions from whichever backend runs it)."""
        return decode_words(word_logits, self.labels, self.decode, self.backend.crf_scores())

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
        batches = self.batches(windows)
        if self._pool is not None and len(batches) > 1:
            rows = list(self._pool.map(self._forward, batches))
        else:
            rows = [self._forward(batch) for batch in batches]
        lengths = [len(words) for words in word_lists]
        if not rows:
            return [torch.empty(n, len(self.labels)) for n in lengths]
        flat = [torch.cat(parts) for parts in zip(*rows)]
        logits, written = words_from_windows(*flat, lengths, fill=float("nan"))
        if not all(bool(w.all()) for w in written):  # every word is owned by exactly one window
            raise RuntimeError("some words got no prediction: a windowing bug, please report it")
        return logits

    def batches(self, windows: Sequence) -> list[Sequence]:
        """``windows`` sorted longest first and cut into the batches the backend runs: at most
        ``batch_size`` (fewer where a small call must give every concurrent batch some), ended
        early on CPU where windows get shorter (:func:`length_batches`)."""
        windows = sorted(windows, key=len, reverse=True)
        size = self.batch_size
        at_once = self.backend.concurrent_batches
        if at_once > 1 and len(windows) < at_once * size:
            size = max(1, math.ceil(len(windows) / at_once))  # a small call: a batch per thread
        min_fill = CPU_MIN_FILL if self.device.type == "cpu" else 0
        return length_batches(windows, size, min_fill, self.pad_multiple)

    def _forward(self, windows) -> tuple[torch.Tensor, ...]:
        """(sentence index, word index, logits) of each word-owning subword of one batch; run
        in the pool's threads too, where ``inference_mode`` (thread-local) must be entered."""
        with torch.inference_mode():
            batch = collate_windows(windows, self.pad_id, self.pad_multiple, self.max_length)
            logits = self.backend(batch["input_ids"], batch["attention_mask"], batch["casing_ids"])
            owned = batch["word_index"] >= 0
            sentence = batch["sentence_index"].unsqueeze(1).expand_as(owned)
            return (
                sentence[owned],
                batch["word_index"][owned],
                logits[owned.to(logits.device)].float().cpu(),
            )


#: on CPU a batch ends at a window shorter than this share of its longest (see length_batches)
CPU_MIN_FILL = 0.9


def length_batches(
    windows: Sequence, size: int, min_fill: float, multiple: int | None = None
) -> list[Sequence]:
    """Consecutive runs of ``windows`` (sorted longest first) of at most ``size``, each ending
    before a window whose padded width (its length rounded up to ``multiple``) is under
    ``min_fill`` times the run's first: every batch is then padded by less than ``1 - min_fill``
    of what its windows would cost anyway.

    Why: a forward costs in proportion to its padded tokens (on 2 CPU threads MiniLM takes ~90 us
    per token, a call's overhead ~1 ms). Windows of many texts sorted together barely differ from
    one neighbour to the next, so this changes nothing for a large call; but the 31 random GMB
    sentences a server batches at once, cut only by count, are padded to 54% real tokens. On a
    GPU a call costs more than its tokens, so there ``min_fill`` is 0 (count only). Windows that
    round up to the same width cost the same together as apart, so they never end a batch.
    """
    batches, start = [], 0
    first = 0
    for i, window in enumerate(windows):
        width = padded_width(len(window), multiple)
        if i > start and (i - start == size or width < min_fill * first):
            batches.append(windows[start:i])
            start = i
        if i == start:
            first = width
    if start < len(windows):
        batches.append(windows[start:])
    return batches


_SURROGATE = re.compile("[\ud800-\udfff]")


def _kind(value) -> str:
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _is_word_list(value) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def _check_batch(items, name: str) -> None:
    if not _is_word_list(items):
        raise TypeError(f"{name} is {_kind(items)}: expected a list")


def _check_text(text: str, where: str) -> None:
    """A lone surrogate (from bytes decoded with ``surrogateescape``, or broken JSON) is not
    text any tokenizer can take, and would fail deep inside it."""
    found = _SURROGATE.search(text)
    if found:
        raise ValueError(
            f"{where} holds a lone surrogate (U+{ord(found.group()):04X}) at character "
            f"{found.start()}: not encodable text; decode its bytes with errors='replace'"
        )


def _check_words(words: Sequence, where: str) -> None:
    for j, word in enumerate(words):
        if not isinstance(word, str):
            raise TypeError(f"{where}[{j}] is {_kind(word)}: a word must be a str")
        _check_text(word, f"{where}[{j}]")


def _present(words) -> list[int]:
    """Indices of the words that are not blank (empty or whitespace only)."""
    return [i for i, word in enumerate(words) if word.strip()]


def _with_blanks(tags: list[str], kept: list[int], length: int) -> list[str]:
    """Tags of the present words put back among the blank ones (see ``predict_tags``)."""
    full = ["O"] * length
    for tag, i in zip(tags, kept):
        full[i] = tag
    for before, after in zip(kept, kept[1:]):
        if after > before + 1 and full[after].startswith("I-"):
            full[before + 1 : after] = [full[after]] * (after - before - 1)
    return full

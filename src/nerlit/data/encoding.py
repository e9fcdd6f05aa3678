"""Words -> subword windows with aligned labels; batches -> padded tensors.

Hand-written rather than a single ``tokenizer(..., is_split_into_words=True)`` call because
nerlit needs three things that call does not give: a word that tokenizes to nothing still gets a
position (fed as the unknown token) so it gets a prediction; a sentence longer than the encoder's
window is split into overlapping windows instead of truncated; and each window records which
words it *owns*, so that every word is predicted and scored exactly once.

With ``context > 0`` a sentence's window also carries subwords of its document's neighbouring
sentences (FLERT document context, Schweter & Akbik 2020): the encoder sees the sentence in its
document, which disambiguates entities mentioned more fully nearby. Context is input only.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Sampler

from nerlit.data.casing import SPECIAL, word_casing
from nerlit.data.schemes import split_tag
from nerlit.data.types import Sentence
from nerlit.errors import DataError
from nerlit.options import is_pad_multiple

#: the casing rule without ``word_casing``'s process-wide cache: the encoder keeps each word's
#: class beside its subwords, so tagging a stream of new words leaves nothing behind once the
#: encoder is gone (that cache held up to a million words for the life of the process)
_casing_of = getattr(word_casing, "__wrapped__", word_casing)
IGNORE_INDEX = -100  # CrossEntropyLoss's ignore_index: no loss on this position


def window_limit(tokenizer, config=None) -> int:
    """The longest window the encoder takes: the tokenizer's limit, capped by the positions."""
    limit = tokenizer.model_max_length
    if limit is None or limit > 100_000:  # tokenizers without a limit report a huge sentinel
        limit = 512
    positions = getattr(config, "max_position_embeddings", None) or limit
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        positions -= 2  # their position ids start after the padding index
    return min(limit, positions)


@dataclass(frozen=True)
class Window:
    """One encoder input: a run of words from one sentence, with per-token bookkeeping.

    ``word_index[t]`` is the word's position in its sentence when token ``t`` is the first subword
    of a word this window owns, else -1; decoding reads predictions at exactly those tokens.
    ``casings[t]`` is the casing class of token ``t``'s word (:mod:`nerlit.data.casing`).
    ``context_tokens`` counts the document-context subwords before and after the sentence's own.
    """

    input_ids: list[int]
    labels: list[int]
    word_index: list[int]
    sentence_index: int
    casings: list[int]
    context_tokens: tuple[int, int] = (0, 0)

    def __len__(self) -> int:
        return len(self.input_ids)


class SubwordEncoder:
    """Tokenizes words (cached per distinct word) and cuts sentences into windows.

    The per-word cache (subwords and casing class) lives as long as the encoder: ``Tagger``
    makes one per call, so a file tagged chunk by chunk holds one chunk's words at a time.

    ``context``: up to this many subwords of document context on each side of a sentence (0: off).
    """

    def __init__(
        self,
        tokenizer,
        max_length: int,
        stride: int = 64,
        label_all_subwords: bool = False,
        context: int = 0,
    ) -> None:
        self.tokenizer = tokenizer
        self.cls = (
            tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        )
        self.sep = (
            tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        )
        self.unk = tokenizer.unk_token_id
        specials = int(self.cls is not None) + int(self.sep is not None)
        self.budget = max_length - specials
        if self.budget < 2:
            raise ValueError(f"max_length={max_length} leaves no room for words")
        self.stride = min(stride, self.budget // 2)
        self.label_all_subwords = label_all_subwords
        if context < 0:
            raise ValueError(f"context={context}: expected a number of subwords >= 0")
        self.context = context
        self._pieces: dict[str, list[int]] = {}
        self._casings: dict[str, int] = {}

    def word_pieces(self, words: Sequence[str]) -> list[list[int]]:
        """Subword ids of each word as it would be tokenized inside a sentence."""
        missing = list({w for w in words if w not in self._pieces})
        # the tokenizers library's own batch call where it gives the same ids: transformers'
        # __call__ on top of it builds a Python dict per word (3.4x slower over GMB's words). Not
        # while the backend pads or truncates (a tokenizer.json may say so: MiniLM's pads to 128);
        # transformers' call turns that off for the call, so later chunks take the fast path
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        for start in range(0, len(missing), 4096):
            chunk = missing[start : start + 4096]
            if backend is not None and backend.padding is None and backend.truncation is None:
                encodings = backend.encode_batch(
                    [[w] for w in chunk], is_pretokenized=True, add_special_tokens=False
                )
                ids = [e.ids for e in encodings]
            else:
                ids = self.tokenizer(
                    [[w] for w in chunk], is_split_into_words=True, add_special_tokens=False
                )["input_ids"]
            for word, pieces in zip(chunk, ids):
                self._pieces[word] = (pieces or [self.unk])[: self.budget]
                self._casings[word] = _casing_of(word)
        return [self._pieces[w] for w in words]

    def spans(self, lengths: Sequence[int]) -> list[tuple[int, int, int, int]]:
        """Windows over words as (start, end, own_start, own_end), overlapping by ~stride tokens.

        Overlapping words belong to the window in which they sit farther from the edge (the
        overlap is split at its middle), so each word is owned by exactly one window.
        """
        n = len(lengths)
        if sum(lengths) <= self.budget:
            return [(0, n, 0, n)]
        spans: list[list[int]] = []
        start = 0
        while True:
            end, used = start, 0
            while end < n and used + lengths[end] <= self.budget:
                used += lengths[end]
                end += 1
            if end == n:
                spans.append([start, end, start, end])
                break
            nxt, overlap = end, 0
            while nxt - 1 > start and overlap + lengths[nxt - 1] <= self.stride:
                nxt -= 1
                overlap += lengths[nxt]
            spans.append([start, end, start, end])
            start = nxt
        for left, right in zip(spans, spans[1:]):
            middle = (right[0] + left[1] + 1) // 2
            left[3] = right[2] = middle
        return [tuple(s) for s in spans]

    def neighbour_words(
        self, sentences: Sequence[Sentence], index: int, step: int, limit: int
    ) -> list[str]:
        """Whole words of the same document's sentences on one side (``step`` -1: before, 1:
        after), nearest first, as many as fit in ``limit`` subwords.

        Adjacency in ``sentences`` is document order. Context stops at the first word that does
        not fit, so it is always a contiguous run of text next to the sentence.
        """
        document = sentences[index].document
        taken, used = [], 0
        other = index + step
        while 0 <= other < len(sentences) and sentences[other].document == document:
            words = sentences[other].words
            for word in reversed(words) if step < 0 else words:
                size = len(self._pieces[word])
                if used + size > limit:
                    return taken
                taken.append(word)
                used += size
            other += step
        return taken

    def context_words(
        self, sentences: Sequence[Sentence], index: int, room: int
    ) -> tuple[list[str], list[str]]:
        """(left, right) context words of ``sentences[index]`` in text order, within ``room``.

        Each side gets at most ``self.context`` subwords; when the room left by the sentence is
        shorter than both sides together, the left side takes up to half and the right the rest.
        """
        if not self.context or sentences[index].document is None:
            return [], []
        left = self.neighbour_words(sentences, index, -1, min(self.context, room // 2))[::-1]
        room -= sum(len(self._pieces[w]) for w in left)
        right = self.neighbour_words(sentences, index, 1, min(self.context, room))
        return left, right

    def encode(self, sentences: Sequence[Sentence], label2id: Mapping[str, int]) -> list[Window]:
        """Windows of every sentence, in order; ``sentence_index`` points back into ``sentences``.

        A sentence that fits one window and belongs to a document gets document context (see
        :meth:`context_words`): its neighbours' subwords around its own, labelled
        ``IGNORE_INDEX`` with ``word_index`` -1, so they are never trained on, predicted or
        scored, and the sentence's own tokens keep their labels and word indices. A sentence
        longer than one window is windowed as without context.
        """
        self.word_pieces([w for s in sentences for w in s.words])
        inside = {t: label2id.get(f"I-{split_tag(t)[1]}", i) for t, i in label2id.items()}
        inside["O"] = label2id.get("O", 0)
        windows: list[Window] = []
        for index, sentence in enumerate(sentences):
            pieces = [self._pieces[w] for w in sentence.words]
            tags = [label2id[t] for t in sentence.tags]
            cont = [inside[t] for t in sentence.tags]
            spans = self.spans([len(p) for p in pieces])
            left, right = [], []
            if len(spans) == 1:
                room = self.budget - sum(map(len, pieces))
                left, right = self.context_words(sentences, index, room)
            left_ids = [i for w in left for i in self._pieces[w]]
            right_ids = [i for w in right for i in self._pieces[w]]
            left_casings = [self._casings[w] for w in left for _ in self._pieces[w]]
            right_casings = [self._casings[w] for w in right for _ in self._pieces[w]]
            casing = [self._casings[w] for w in sentence.words]
            for start, end, own_start, own_end in spans:
                ids, labels, word_index, casings = [], [], [], []
                if self.cls is not None:
                    ids.append(self.cls), labels.append(IGNORE_INDEX), word_index.append(-1)
                    casings.append(SPECIAL)
                ids.extend(left_ids)
                labels.extend([IGNORE_INDEX] * len(left_ids))
                word_index.extend([-1] * len(left_ids))
                casings.extend(left_casings)
                for w in range(start, end):
                    ids.extend(pieces[w])
                    labels.append(tags[w])
                    word_index.append(w if own_start <= w < own_end else -1)
                    rest = len(pieces[w]) - 1
                    labels.extend([cont[w] if self.label_all_subwords else IGNORE_INDEX] * rest)
                    word_index.extend([-1] * rest)
                    casings.extend([casing[w]] * len(pieces[w]))
                ids.extend(right_ids)
                labels.extend([IGNORE_INDEX] * len(right_ids))
                word_index.extend([-1] * len(right_ids))
                casings.extend(right_casings)
                if self.sep is not None:
                    ids.append(self.sep), labels.append(IGNORE_INDEX), word_index.append(-1)
                    casings.append(SPECIAL)
                context = (len(left_ids), len(right_ids))
                windows.append(Window(ids, labels, word_index, index, casings, context))
        return windows


def padded_width(longest: int, multiple: int | None = None, limit: int | None = None) -> int:
    """A batch's padded length: its longest window rounded up to ``multiple`` (never past
    ``limit``, the encoder's window, unless the window itself is longer).

    Why round at all: a GPU kernel library plans per shape. With exact padding nearly every
    length-grouped batch is a new length, and cuDNN's attention built a new plan for each (a
    BERT-base step took 190 ms instead of 41 on an H200); CUDA graphs and compiled kernels are
    per shape too. Rounding to a multiple bounds the lengths an epoch sees to
    ``ceil(limit / multiple)``. On a CPU every padded token is paid for, so ``auto`` keeps
    exact padding there (``resolve_pad_multiple``).
    """
    if not multiple or multiple <= 1:
        return longest
    rounded = -(-longest // multiple) * multiple
    if limit is not None and rounded > limit:
        return max(longest, limit)
    return rounded


def resolve_pad_multiple(
    value: int | str | None, device_type: str, *, cpu_auto: int | None = None
) -> int | None:
    """``pad_to_multiple_of``: a number, null (exact), or ``auto``: :data:`GPU_PAD_MULTIPLE` on
    an accelerator, where a bounded set of shapes is what matters (docs/results.md, "Training on
    a GPU"), and ``cpu_auto`` on a CPU: exact (None) for training, where padding costs its full
    share of arithmetic, a small multiple for tagging, where oneDNN keeps what it builds for
    every new shape and a long input's memory grows with it."""
    if value is None:
        return None
    if not is_pad_multiple(value):
        raise DataError(
            f"data.pad_to_multiple_of={value!r}: expected a whole number of subwords >= 1, "
            f"null for exact padding, or auto"
        )
    if value == "auto":
        return cpu_auto if device_type == "cpu" else GPU_PAD_MULTIPLE
    return value


#: ``auto`` padding on a GPU: BERT-base lengths on GMB stay within a handful of shapes
GPU_PAD_MULTIPLE = 32


def collate_windows(
    windows: Sequence[Window],
    pad_id: int,
    pad_to_multiple_of: int | None = None,
    limit: int | None = None,
) -> dict[str, torch.Tensor | int]:
    """Dynamic padding: each batch is padded to its own longest window (rounded up to
    ``pad_to_multiple_of`` where given, see :func:`padded_width`)."""
    width = padded_width(max(len(w) for w in windows), pad_to_multiple_of, limit)
    size = (len(windows), width)
    input_ids = torch.full(size, pad_id, dtype=torch.long)
    attention_mask = torch.zeros(size, dtype=torch.long)
    labels = torch.full(size, IGNORE_INDEX, dtype=torch.long)
    word_index = torch.full(size, -1, dtype=torch.long)
    casings = torch.full(size, SPECIAL, dtype=torch.long)
    for row, w in enumerate(windows):
        n = len(w)
        input_ids[row, :n] = torch.tensor(w.input_ids)
        attention_mask[row, :n] = 1
        labels[row, :n] = torch.tensor(w.labels)
        word_index[row, :n] = torch.tensor(w.word_index)
        casings[row, :n] = torch.tensor(w.casings)
    sentence_index = torch.tensor([w.sentence_index for w in windows], dtype=torch.long)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "word_index": word_index,
        "casing_ids": casings,
        "sentence_index": sentence_index,
        # Host-side counts for throughput logging: reading them never waits on the device.
        "num_tokens": sum(len(w) for w in windows),
        "num_words": sum(sum(1 for i in w.word_index if i >= 0) for w in windows),
    }


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Batches of similar-length windows: little padding, so little wasted compute.

    Training (``shuffle=True``): shuffle, cut into pools of ``pool_batches`` batches, sort each pool
    by length, batch it, then shuffle the batches, so each epoch sees a different order. Evaluation
    (``shuffle=False``): plain length order; predictions are mapped back by sentence and word index.
    ``group_by_length=False`` makes training batches plain random draws (for measuring the gain).

    ``max_tokens`` (token-budget batching, as fairseq's ``--max-tokens``): a batch also ends
    before its padded size (windows x its longest window's length) would pass the budget, so a
    batch of long windows holds fewer of them and costs about what a batch of short ones costs;
    ``batch_size`` stays the cap on windows, so raise it to let short windows fill the budget.
    Under a budget the pools give way to one epoch-wide order by padded width (shuffled within
    each width, then the batches shuffled, as fairseq's ``batch_by_size``): pools of other
    windows each epoch would give another number of batches each epoch, which Lightning does
    not follow. It always groups by length, so ``group_by_length=False`` has no budget.
    Hand-written: torch and Lightning have no batch sampler that caps padded tokens, and the
    budget has to act inside the length-sorted pools and the per-rank sharding below.

    Distributed: Lightning shards a plain sampler but not a custom batch sampler, so this one
    shards itself. Every rank builds the same global list of batches (same seed, same epoch) and
    takes every ``num_replicas``-th one; rank and world size come from ``torch.distributed`` when
    not given, read when the loader iterates (the process group exists by then). Training drops the
    last ``len % num_replicas`` batches of the shuffled list, so each rank steps the same number
    of times (DDP would otherwise wait forever on the rank with one step more) and no window is
    seen twice in an epoch; which batches are dropped changes every epoch. Evaluation neither
    drops nor repeats: ranks may differ by one batch, which evaluation tolerates as it has no
    per-step collective, and with fewer batches than ranks batches are split so that each rank
    gets one (a rank with none would skip the epoch-end gather the others wait in). Only with
    fewer windows than ranks is a window repeated; scoring writes a repeated word's slot twice
    with the same prediction.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        pool_batches: int = 50,
        num_replicas: int | None = None,
        rank: int | None = None,
        group_by_length: bool = True,
        max_tokens: int | None = None,
        pad_to_multiple_of: int | None = None,
        limit: int | None = None,
    ) -> None:
        self.lengths = list(lengths)
        self.pad_to_multiple_of = pad_to_multiple_of
        self.limit = limit
        self.group_by_length = group_by_length
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool_batches = pool_batches
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def sampler(self) -> LengthGroupedBatchSampler:
        """Itself: Lightning calls ``set_epoch`` on ``batch_sampler.sampler``, never on a batch
        sampler, so without this every epoch would see the first epoch's order."""
        return self

    def replicas(self) -> tuple[int, int]:
        """(world size, this rank): as given, else from an initialized process group."""
        if self.num_replicas is not None:
            return self.num_replicas, self.rank or 0
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_world_size(), torch.distributed.get_rank()
        return 1, 0

    def global_batches(self) -> list[list[int]]:
        """The batches of all ranks together, identical on every rank."""
        order = list(range(len(self.lengths)))
        if not self.shuffle:
            order.sort(key=lambda i: -self.lengths[i])
            return self.cut(order)
        rng = random.Random(self.seed + self.epoch)
        rng.shuffle(order)
        if self.max_tokens:
            # The whole epoch in order of padded width, random within each width: where the cut
            # falls then depends only on how many windows have each width, so every epoch has
            # the same number of batches. Lightning reads that number once, at the first epoch:
            # fewer batches later and it never validated again; more and it cut the epoch short.
            order.sort(
                key=lambda i: padded_width(self.lengths[i], self.pad_to_multiple_of, self.limit)
            )
            batches = self.cut(order)
        else:
            pool = self.batch_size * self.pool_batches
            batches = []
            for p in range(0, len(order), pool):
                chunk = order[p : p + pool]
                if self.group_by_length:
                    chunk.sort(key=lambda i: self.lengths[i])
                batches += self.cut(chunk)
        rng.shuffle(batches)
        return batches

    def cut(self, order: list[int]) -> list[list[int]]:
        """``order`` cut into consecutive batches of at most ``batch_size`` windows and, with
        ``max_tokens``, at most that many padded tokens (a window longer than the budget alone
        is a batch of one; the data module refuses a budget below its window limit)."""
        if not self.max_tokens:
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        batches: list[list[int]] = []
        batch: list[int] = []
        longest = 0
        for i in order:
            width = padded_width(max(longest, self.lengths[i]), self.pad_to_multiple_of, self.limit)
            padded = (len(batch) + 1) * width
            if batch and (len(batch) == self.batch_size or padded > self.max_tokens):
                batches.append(batch)
                batch, longest = [], 0
            batch.append(i)
            longest = max(longest, self.lengths[i])
        if batch:
            batches.append(batch)
        return batches

    def rank_batches(self) -> list[list[int]]:
        """This rank's share of :meth:`global_batches` (all of them in a single process)."""
        batches = self.global_batches()
        replicas, rank = self.replicas()
        if replicas == 1 or not batches:
            return batches
        if self.shuffle:
            if len(batches) < replicas:
                batches = (batches * replicas)[:replicas]
            batches = batches[: len(batches) - len(batches) % replicas]
        else:
            while len(batches) < replicas and any(len(b) > 1 for b in batches):
                i = max(range(len(batches)), key=lambda k: len(batches[k]))
                half = (len(batches[i]) + 1) // 2
                batches[i : i + 1] = [batches[i][:half], batches[i][half:]]
            batches += [batches[-1]] * (replicas - len(batches))
        return batches[rank::replicas]

    def __len__(self) -> int:
        return len(self.rank_batches())

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.rank_batches()

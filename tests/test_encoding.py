"""Subword alignment, unknown-token words, windows for long sentences, batching."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nerlit.data.encoding import (
    IGNORE_INDEX,
    LengthGroupedBatchSampler,
    SubwordEncoder,
    collate_windows,
    padded_width,
    resolve_pad_multiple,
)
from nerlit.data.types import Sentence
from nerlit.errors import DataError
from nerlit.models.decoding import words_from_windows

LABELS = {"O": 0, "B-per": 1, "I-per": 2, "B-geo": 3, "I-geo": 4}


def test_first_subword_gets_the_label(cased_tokenizer):
    enc = SubwordEncoder(cased_tokenizer, max_length=64)
    sentence = Sentence(("Schwarzenegger", "visited", "Berlin"), ("B-per", "O", "B-geo"))
    (window,) = enc.encode([sentence], LABELS)
    pieces = enc.word_pieces(sentence.words)
    assert len(pieces[0]) > 1, "fixture needs a multi-subword word"
    assert window.input_ids[0] == cased_tokenizer.cls_token_id
    assert window.input_ids[-1] == cased_tokenizer.sep_token_id
    firsts = [i for i, w in enumerate(window.word_index) if w >= 0]
    assert [window.word_index[i] for i in firsts] == [0, 1, 2]
    assert [window.labels[i] for i in firsts] == [1, 0, 3]
    rest = [i for i in range(len(window)) if i not in firsts]
    assert all(window.labels[i] == IGNORE_INDEX for i in rest)
    # the subword ids equal the tokenizer's own for the whole sentence
    whole = cased_tokenizer(list(sentence.words), is_split_into_words=True)["input_ids"]
    assert window.input_ids == whole


def test_label_all_subwords_uses_inside_tags(cased_tokenizer):
    enc = SubwordEncoder(cased_tokenizer, max_length=64, label_all_subwords=True)
    (window,) = enc.encode([Sentence(("Schwarzenegger",), ("B-per",))], LABELS)
    assert window.labels[1] == 1
    assert set(window.labels[2:-1]) == {2}


def test_word_without_subwords_is_fed_as_unknown(cased_tokenizer):
    enc = SubwordEncoder(cased_tokenizer, max_length=64)
    sentence = Sentence(("a", "\u200b", "b"), ("O", "B-per", "O"))
    (window,) = enc.encode([sentence], LABELS)
    position = window.word_index.index(1)
    assert window.input_ids[position] == cased_tokenizer.unk_token_id
    assert window.labels[position] == 1


def test_long_sentence_windows_own_each_word_once(cased_tokenizer):
    words = tuple(f"word{i % 17}" for i in range(300))
    tags = tuple("B-geo" if i % 7 == 0 else "O" for i in range(300))
    enc = SubwordEncoder(cased_tokenizer, max_length=32, stride=8)
    windows = enc.encode([Sentence(words, tags)], LABELS)
    assert len(windows) > 10
    assert all(len(w) <= 32 for w in windows)
    owned = sorted(i for w in windows for i in w.word_index if i >= 0)
    assert owned == list(range(300))
    # consecutive windows overlap (context on both sides of a cut)
    spans = enc.spans([len(p) for p in enc.word_pieces(words)])
    assert all(b[0] < a[1] for a, b in zip(spans, spans[1:]))


def test_collate_pads_dynamically(cased_tokenizer):
    enc = SubwordEncoder(cased_tokenizer, max_length=64)
    windows = enc.encode(
        [Sentence(("a",), ("O",)), Sentence(("a", "b", "c"), ("O", "O", "B-per"))], LABELS
    )
    batch = collate_windows(windows, pad_id=0)
    assert batch["input_ids"].shape == (2, 5)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1] * 5]
    assert batch["labels"][0, 3:].tolist() == [IGNORE_INDEX] * 2
    assert batch["sentence_index"].tolist() == [0, 1]
    assert batch["num_tokens"] == 8 and batch["num_words"] == 4
    assert isinstance(batch["input_ids"], torch.Tensor)


def test_length_grouped_sampler():
    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    sampler = LengthGroupedBatchSampler(
        lengths, batch_size=16, shuffle=True, seed=3, pool_batches=8
    )
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread / len(batches) < 20, "batches should group similar lengths"
    assert batches == list(sampler), "same epoch, same order"
    sampler.set_epoch(1)
    assert batches != list(sampler), "a new epoch reshuffles"
    evaluation = list(LengthGroupedBatchSampler(lengths, 16, shuffle=False))
    assert sorted(i for b in evaluation for i in b) == list(range(1000))


def _padded(batch: list[int], lengths: list[int]) -> int:
    return len(batch) * max(lengths[i] for i in batch)


def test_token_budget_caps_padded_tokens_and_lets_short_windows_fill_it():
    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    for shuffle in (True, False):
        sampler = LengthGroupedBatchSampler(
            lengths, batch_size=128, shuffle=shuffle, seed=3, pool_batches=8, max_tokens=512
        )
        batches = list(sampler)
        assert sorted(i for b in batches for i in b) == list(range(1000)), "each window once"
        assert max(_padded(b, lengths) for b in batches) <= 512
        assert max(map(len, batches)) <= 128
        sizes = {max(lengths[i] for i in b): len(b) for b in batches}
        assert sizes[min(sizes)] > sizes[max(sizes)] == 5, "short windows, bigger batches"
        assert len(batches) == len(sampler)
    # a budget that every batch fits leaves batch_size in charge
    roomy = LengthGroupedBatchSampler(lengths, 16, shuffle=True, seed=3, max_tokens=16 * 101)
    assert {len(b) for b in roomy} == {16, 1000 % 16}


@pytest.mark.parametrize("multiple", [None, 32])
def test_token_budget_gives_every_epoch_the_same_number_of_batches(multiple):
    """Lightning reads a loader's length once: an epoch with fewer batches was never validated
    (the GPU preset's first 4-epoch check kept its first epoch's checkpoint), one with more was
    cut short. The batches themselves still change from epoch to epoch."""
    rng = random.Random(0)
    lengths = [rng.randint(3, 120) for _ in range(3000)]
    sampler = LengthGroupedBatchSampler(
        lengths,
        64,
        shuffle=True,
        seed=1,
        max_tokens=2048,
        pad_to_multiple_of=multiple,
        pool_batches=4,
    )
    epochs = []
    for epoch in range(6):
        sampler.set_epoch(epoch)
        epochs.append(list(sampler))
        assert len(epochs[-1]) == len(sampler)
        assert sorted(i for b in epochs[-1] for i in b) == list(range(3000))
    assert len({len(batches) for batches in epochs}) == 1
    contents = [{frozenset(b) for b in batches} for batches in epochs]
    assert contents[0] != contents[1], "other windows together each epoch"


def test_padding_to_a_multiple_bounds_the_lengths_an_epoch_sees(cased_tokenizer):
    """An epoch's distinct padded lengths stay within ceil(limit / multiple); exact padding
    would give nearly one length per batch (what made cuDNN re-plan at every GPU step)."""
    import random

    rng = random.Random(0)
    words = ["Angela", "visited", "Berlin", "with", "NATO", "on", "Monday", "."]
    drawn = [rng.choices(words, k=rng.randint(1, 60)) for _ in range(400)]
    sentences = [Sentence(tuple(w), ("O",) * len(w), str(i)) for i, w in enumerate(drawn)]
    windows = SubwordEncoder(cased_tokenizer, 128).encode(sentences, {"O": 0})
    lengths = [len(w) for w in windows]
    for multiple, bound in ((None, None), (16, 8), (32, 4)):
        sampler = LengthGroupedBatchSampler(
            lengths, 8, shuffle=True, seed=1, pad_to_multiple_of=multiple, limit=128
        )
        widths = {
            collate_windows([windows[i] for i in batch], 0, multiple, 128)["input_ids"].size(1)
            for batch in sampler
        }
        if bound is None:
            assert len(widths) > 30, "exact padding: many lengths (the test's premise)"
        else:
            assert len(widths) <= bound and all(w % multiple == 0 for w in widths)


def test_padded_width_rounds_up_but_never_past_the_window_limit():
    assert padded_width(33, 32) == 64 and padded_width(32, 32) == 32 and padded_width(5, None) == 5
    assert padded_width(500, 64, limit=510) == 510, "not past the encoder's window"
    assert padded_width(520, 64, limit=510) == 520, "a longer window keeps its own length"
    assert resolve_pad_multiple("auto", "cpu") is None, "exact on a CPU"
    assert resolve_pad_multiple("auto", "cuda") == 32 and resolve_pad_multiple(8, "cpu") == 8
    for bad in (0, -8, "x", True, 1.5):
        try:
            resolve_pad_multiple(bad, "cpu")
        except DataError as error:
            assert "data.pad_to_multiple_of" in str(error)
        else:
            raise AssertionError(f"{bad!r} accepted")


def test_token_budget_counts_the_rounded_width():
    lengths = [33] * 100
    sampler = LengthGroupedBatchSampler(
        lengths, 100, shuffle=False, max_tokens=640, pad_to_multiple_of=32
    )
    assert {len(b) for b in sampler} == {10}, "10 windows padded to 64 fill 640 subwords"


def test_token_budget_shards_evenly_across_ranks():
    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    ranks = [
        list(
            LengthGroupedBatchSampler(
                lengths, 64, shuffle=True, seed=1, num_replicas=2, rank=r, max_tokens=400
            )
        )
        for r in (0, 1)
    ]
    assert len(ranks[0]) == len(ranks[1])
    seen = [i for batches in ranks for b in batches for i in b]
    assert len(seen) == len(set(seen)), "no window twice in an epoch"


# --- properties: any sentence, any window size -> one prediction per word --------------------

WORDS = [
    "Paris",
    "the",
    "Schwarzenegger",
    "\u200b",
    "\u00e9t\u00e9",
    "\U0001f600",
    ",",
    "U.S.",
    "supercalifragilisticexpialidocious",
    "1,000",
    "'s",
    "\u4e2d\u6587",
]


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=120),
    max_length=st.integers(6, 40),
    stride=st.integers(0, 16),
    data=st.data(),
)
def test_alignment_then_decoding_gives_one_prediction_per_word(
    cased_tokenizer, words, max_length, stride, data
):
    tags = data.draw(
        st.lists(st.sampled_from(list(LABELS)), min_size=len(words), max_size=len(words))
    )
    sentence = Sentence(tuple(words), tuple(tags))
    enc = SubwordEncoder(cased_tokenizer, max_length=max_length, stride=stride)
    windows = enc.encode([sentence], LABELS)
    assert all(len(w) <= max_length for w in windows)
    batch = collate_windows(windows, pad_id=0)
    owned = batch["word_index"] >= 0
    sentence_index = batch["sentence_index"].unsqueeze(1).expand_as(owned)[owned]
    # "predict" the gold label at each owned position, then decode back to words
    decoded, written = words_from_windows(
        sentence_index, batch["word_index"][owned], batch["labels"][owned], [len(words)]
    )
    assert bool(written[0].all())
    assert [d.tolist() for d in decoded] == [[LABELS[t] for t in tags]]


WORDS = ["Obama", "São", "naïve", "😀", "U.S.-led", "ﬁne", "Ⅻ", "", " ", "\u200b", "x" * 300]


class _WrapperOnly:
    """A tokenizer without ``backend_tokenizer``: only transformers' ``__call__``."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer

    def __getattr__(self, name: str):
        if name == "backend_tokenizer":
            raise AttributeError(name)
        return getattr(self._tokenizer, name)

    def __call__(self, *args, **kwargs):
        return self._tokenizer(*args, **kwargs)


def test_word_pieces_are_the_tokenizers_own_with_or_without_its_backend(cased_tokenizer):
    """The fast path (the tokenizers library's batch call) gives transformers' ids exactly."""
    expected = cased_tokenizer(
        [[w] for w in WORDS], is_split_into_words=True, add_special_tokens=False
    )["input_ids"]
    expected = [(ids or [cased_tokenizer.unk_token_id])[:126] for ids in expected]
    assert SubwordEncoder(cased_tokenizer, 128).word_pieces(WORDS) == expected
    # a tokenizer.json that pads and truncates (MiniLM's pads every text to 128) changes nothing
    backend = cased_tokenizer.backend_tokenizer
    backend.enable_padding(length=16)
    backend.enable_truncation(max_length=1)
    try:
        assert SubwordEncoder(cased_tokenizer, 128).word_pieces(WORDS) == expected
    finally:  # the fixture is shared
        backend.no_padding()
        backend.no_truncation()
    assert SubwordEncoder(_WrapperOnly(cased_tokenizer), 128).word_pieces(WORDS) == expected
    assert expected[3] == [cased_tokenizer.unk_token_id] and len(expected[4]) > 1

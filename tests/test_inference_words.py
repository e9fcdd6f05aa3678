"""Raw text -> words: the GMB/CoNLL conventions, and offsets that always slice back exactly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerlit.data.words import join_words, split_words


def words(text: str) -> list[str]:
    return [w for w, _, _ in split_words(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Iraq's capital", ["Iraq", "'s", "capital"]),
        ("Korea’s army", ["Korea", "’s", "army"]),
        ("they don't", ["they", "do", "n't"]),
        ("we're here", ["we", "'re", "here"]),
        ("O'Connor and Shi'ite", ["O'Connor", "and", "Shi'ite"]),
        ("the U.S.-led force", ["the", "U.S.-led", "force"]),
        ("the U.N. said", ["the", "U.N.", "said"]),
        ("Mr. Bush met Dr. Rice", ["Mr.", "Bush", "met", "Dr.", "Rice"]),
        ("George W. Bush", ["George", "W.", "Bush"]),
        ("at 10:30 a.m. on", ["at", "10:30", "a.m.", "on"]),
        ("1,000 or 3.5 %", ["1,000", "or", "3.5", "%"]),
        ("al-Qaida-linked", ["al-Qaida-linked"]),
        ("de~facto", ["de~facto"]),
        ("AT&T", ["AT&T"]),
        ("end.", ["end", "."]),
        ("(Reuters) --", ["(", "Reuters", ")", "--"]),
        ('wait... "yes"', ["wait", "...", '"', "yes", '"']),
        ("see www.gov.cn now", ["see", "www.gov.cn", "now"]),
        ("mail a.b@c.org.", ["mail", "a.b@c.org", "."]),
        ("at https://x.org/a?b=1.", ["at", "https://x.org/a?b=1", "."]),
        ("São Paulo café", ["São", "Paulo", "café"]),
        ("hi😀!", ["hi", "😀", "!"]),
        ("a 👩‍🔬 b", ["a", "👩‍🔬", "b"]),
        ("🇺🇸", ["🇺🇸"]),
        ("", []),
        ("  \t ", []),
    ],
)
def test_corpus_conventions(text: str, expected: list[str]):
    assert words(text) == expected


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_offsets_slice_back_and_cover_every_non_space_character(text: str):
    spans = split_words(text)
    position = 0
    covered = set()
    for word, start, end in spans:
        assert text[start:end] == word and word
        assert start >= position
        assert not any(c.isspace() for c in word)
        covered.update(range(start, end))
        position = end
    assert covered == {i for i, c in enumerate(text) if not c.isspace()}


def test_join_words_matches_the_pipeline_convention():
    text, spans = join_words(["New", "York", "."])
    assert text == "New York ."
    assert spans == [("New", 0, 3), ("York", 4, 8), (".", 9, 10)]

"""Decoding: Viterbi finds the best valid sequence; entities get the words' offsets and scores."""

from __future__ import annotations

import itertools

import pytest
import torch

from nerlit.data.schemes import spans, tags_from_spans
from nerlit.inference.spans import entities_from_tags
from nerlit.models.decoding import allowed_transitions, transition_scores, viterbi

IOB2 = ["O", "B-per", "I-per", "B-geo", "I-geo"]
BIOES = ["O", "B-per", "I-per", "E-per", "S-per"]


def _valid(path, transitions, first, last) -> bool:
    return (
        bool(first[path[0]])
        and bool(last[path[-1]])
        and all(transitions[a, b] for a, b in zip(path, path[1:]))
    )


@pytest.mark.parametrize("labels", [IOB2, BIOES])
def test_viterbi_equals_exhaustive_search_over_valid_sequences(labels):
    generator = torch.Generator().manual_seed(0)
    transitions, first, last = allowed_transitions(labels)
    sentences = [
        torch.randn(n, len(labels), generator=generator).log_softmax(-1) for n in (1, 4, 2, 5, 3)
    ]
    decoded = viterbi(sentences, *transition_scores(labels), chunk=2)
    for scores, path in zip(sentences, decoded):
        candidates = [
            p
            for p in itertools.product(range(len(labels)), repeat=len(scores))
            if _valid(p, transitions, first, last)
        ]
        best = max(candidates, key=lambda p: sum(scores[i, y].item() for i, y in enumerate(p)))
        assert tuple(path) == best


def test_viterbi_repairs_what_argmax_gets_wrong():
    # argmax: O I-per I-per (invalid start); the best valid reading starts the entity with B-per
    scores = torch.tensor(
        [[0.9, 0.02, 0.04, 0.02, 0.02], [0.1, 0.3, 0.5, 0.05, 0.05], [0.1, 0.05, 0.8, 0.0, 0.05]]
    ).log()
    assert scores.argmax(-1).tolist() == [0, 2, 2]
    assert viterbi([scores], *transition_scores(IOB2)) == [[0, 1, 2]]


def test_entity_text_offsets_and_score():
    text = "Angela Merkel  visited Berlin"
    words = [("Angela", 0, 6), ("Merkel", 7, 13), ("visited", 15, 22), ("Berlin", 23, 29)]
    entities = entities_from_tags(
        ["B-per", "I-per", "O", "B-geo"], [0.5, 1.0, 0.9, 0.8], words, text
    )
    assert [(e.text, e.start, e.end, e.score) for e in entities] == [
        ("Angela Merkel", 0, 13, 0.75),
        ("Berlin", 23, 29, 0.8),
    ]
    found = [(e.label, e.word_start, e.word_end) for e in entities]
    assert found == spans(["B-per", "I-per", "O", "B-geo"])
    assert tags_from_spans(found, 4) == ["B-per", "I-per", "O", "B-geo"]

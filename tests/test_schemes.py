"""Scheme conversions round-trip; repair always yields valid IOB2; detection finds the scheme."""

from __future__ import annotations

import logging
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from nerlit.data.corpus import load_file
from nerlit.data.schemes import (
    bioes_to_iob2,
    check_tag,
    detect_scheme,
    iob1_to_iob2,
    iob2_to_bioes,
    iob2_to_iob1,
    repair_iob2,
    scheme_evidence,
    spans,
    split_tag,
    tags_from_spans,
    to_iob2,
)

TYPES = ["per", "geo", "org"]
segment = st.one_of(
    st.just(["O"]),
    st.tuples(st.sampled_from(TYPES), st.integers(1, 4)).map(
        lambda t: [f"B-{t[0]}"] + [f"I-{t[0]}"] * (t[1] - 1)
    ),
)
valid_iob2 = st.lists(segment, max_size=12).map(lambda parts: [t for p in parts for t in p])
any_tags = st.lists(
    st.one_of(
        st.just("O"),
        st.builds(lambda p, t: f"{p}-{t}", st.sampled_from("BI"), st.sampled_from(TYPES)),
    ),
    max_size=20,
)


def is_valid_iob2(tags: list[str]) -> bool:
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            return False
        prev = tag
    return True


@given(valid_iob2)
def test_bioes_round_trip(tags):
    bioes = iob2_to_bioes(tags)
    assert len(bioes) == len(tags)
    assert bioes_to_iob2(bioes) == tags
    assert to_iob2(bioes, "bioes") == (tags, 0)


@given(valid_iob2)
def test_iob1_round_trip(tags):
    assert iob1_to_iob2(iob2_to_iob1(tags)) == tags


@given(valid_iob2)
def test_valid_iob2_needs_no_repair(tags):
    assert repair_iob2(tags) == (tags, 0)


@given(any_tags)
def test_repair_gives_valid_iob2_and_is_idempotent(tags):
    repaired, fixed = repair_iob2(tags)
    assert is_valid_iob2(repaired)
    assert fixed == sum(a != b for a, b in zip(tags, repaired))
    assert repair_iob2(repaired) == (repaired, 0)
    assert [t[2:] for t in repaired] == [t[2:] for t in tags], "types are never changed"


def test_repair_rule_examples():
    assert repair_iob2(["O", "I-per", "I-per", "I-geo"]) == (["O", "B-per", "I-per", "B-geo"], 2)


def test_detect_scheme():
    assert detect_scheme([["B-per", "I-per", "O", "B-geo"]]) == "iob2"
    assert detect_scheme([["I-per", "I-per", "O", "I-geo"], ["I-per", "B-per"]]) == "iob1"
    assert detect_scheme([["B-per", "E-per", "O", "S-geo"]]) == "bioes"
    assert detect_scheme([["U-per", "O"]]) == "bioes"
    # IOB2 with a stray I- is still IOB2 (to be repaired), not IOB1
    assert detect_scheme([["B-per", "O", "I-geo"]]) == "iob2"


def test_split_and_check_tag():
    assert split_tag("B-per") == ("B", "per") and split_tag("E-long-type") == ("E", "long-type")
    assert split_tag("O") == ("O", "") and split_tag("U-per") == ("U", "per")
    assert split_tag("per") == ("I", "per"), "a bare type is inside an entity, as HF reads it"
    assert all(map(check_tag, ["O", "B-per", "L-x"]))
    assert not any(map(check_tag, ["per", "B-", "X-per", ""]))


def test_spans_read_any_sequence_like_the_pipeline():
    assert spans(["B-per", "I-per", "O", "B-geo"]) == [("per", 0, 2), ("geo", 3, 4)]
    assert spans(["O", "I-per", "I-per"]) == [("per", 1, 3)]  # a stray I- starts an entity
    assert spans(["B-per", "B-per"]) == [("per", 0, 1), ("per", 1, 2)]
    assert spans(["B-per", "I-geo"]) == [("per", 0, 1), ("geo", 1, 2)]
    assert spans(["per", "per", "O"]) == [("per", 0, 2)]  # bare labels continue, as in HF
    assert spans(["S-per", "B-per", "I-per", "E-per", "S-geo"]) == [
        ("per", 0, 1),
        ("per", 1, 4),
        ("geo", 4, 5),
    ]
    assert spans(["E-per", "I-per"]) == [("per", 0, 1), ("per", 1, 2)]  # E- closes


@given(valid_iob2)
def test_spans_and_tags_round_trip(tags):
    assert tags_from_spans(spans(tags), len(tags)) == tags
    assert spans(iob2_to_bioes(tags)) == spans(tags)


@given(any_tags)
def test_repair_keeps_the_entities_spans_reads(tags):
    assert spans(repair_iob2(tags)[0]) == spans(tags)


def test_detect_scheme_by_the_weight_of_evidence():
    """CoNLL-2003's IOB1 train file has two B- starts after O: "any B- start means IOB2" then
    read it as IOB2 and reported its 23,427 I- starts as repairs."""
    iob1 = [["I-per", "I-per", "O", "I-geo"]] * 10 + [["O", "B-org"], ["I-per", "B-per"]]
    assert detect_scheme(iob1) == "iob1"
    evidence = scheme_evidence(iob1)
    assert (evidence.i_starts, evidence.b_starts) == (21, 1)
    assert evidence.disagreeing() == (1, [(10, 1)])
    iob2 = [["B-per", "I-per", "O", "B-geo"]] * 3 + [["O", "I-org"]]
    assert detect_scheme(iob2) == "iob2" and scheme_evidence(iob2).disagreeing() == (1, [(3, 1)])


def test_an_iob1_file_with_one_slip_is_iob1_repairs_nothing_and_names_the_slip(
    tmp_path: Path, caplog
):
    sentence = "Peter NNP I-PER\nvisited VBD O\nParis NNP I-LOC\nParis NNP B-LOC\n\n"
    slip = "in IN O\nBerlin NNP B-LOC\n\n"  # IOB1 starts with I-: the annotator's slip
    path = tmp_path / "iob1.txt"
    path.write_text("-DOCSTART- -X- O\n\n" + sentence * 5 + slip + sentence * 5)
    with caplog.at_level(logging.WARNING, logger="nerlit.data.corpus"):
        sentences, report = load_file(path)
    assert report.schemes == {"test": "iob1"} and report.repaired_tags == {"test": 0}
    assert "repaired" not in caplog.text
    slip_line = 2 + 5 * 5 + 2
    assert f"iob1.txt:{slip_line}" in caplog.text and "1 start with B-" in caplog.text
    assert sentences[5].tags == ("O", "B-LOC")
    assert sentences[0].tags == ("B-PER", "O", "B-LOC", "B-LOC")

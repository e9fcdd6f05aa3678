"""Tag syntax and tag schemes: parse a tag, read entities off tags, convert IOB1 / IOB2 / BIOES.

Internally every gold sequence is IOB2 (B- starts every entity). Entities are read from any
sequence, valid or not, the way conlleval and the Hugging Face pipeline read it: an I-X that
does not continue an entity of type X (it follows O, or a tag of another type) starts a new
entity. Repair writes that reading back: such an I-X becomes B-X. No tag is ever dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

SCHEMES = ("auto", "iob1", "iob2", "bioes")
_AS_IOB = {"S": "B", "U": "B", "E": "I", "L": "I"}  # BIOES (and BILOU) prefixes -> IOB ones


def split_tag(tag: str) -> tuple[str, str]:
    """``B-per`` -> (``B``, ``per``); ``O`` -> (``O``, ``""``); a bare ``per`` is inside (as HF).

    Prefixes are B, I, E, S, and L, U as BILOU's aliases of E, S.
    """
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIESLU":
        return tag[0], tag[2:]
    return "I", tag


def check_tag(tag: str) -> bool:
    """Whether ``tag`` is O or a prefix, a dash and a type (a bare type is not)."""
    return tag == "O" or split_tag(tag)[1] != tag


def scheme_allows(tag: str, scheme: str) -> bool:
    """Whether ``scheme`` has ``tag``'s prefix: IOB1 and IOB2 have no E-/S- (nor L-/U-), so such
    a tag under them means the scheme was named wrongly, not that the tag is to be dropped."""
    return scheme not in ("iob1", "iob2") or split_tag(tag)[0] in ("O", "B", "I")


def _continues(prev: str, tag: str) -> bool:
    """Whether an I-/E- ``tag`` continues the entity open at ``prev``."""
    (before, prev_kind), (_, kind) = split_tag(prev), split_tag(tag)
    return before in ("B", "I") and prev_kind == kind


def spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities as (type, start, end) word spans, ``end`` exclusive, as the module reads them.

    A word continues the open entity when its tag is I-/E- of that type, else an entity tag
    starts one; O, E- and S- leave no entity open.
    """
    found: list[tuple[str, int, int]] = []
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        if i and prefix in ("I", "E", "L") and _continues(tags[i - 1], tag):
            found[-1] = (kind, found[-1][1], i + 1)
        elif prefix != "O":
            found.append((kind, i, i + 1))
    return found


def tags_from_spans(
    entities: Iterable[tuple[str, int, int]], length: int, scheme: str = "iob2"
) -> list[str]:
    """(type, start, end) word spans back to well-formed ``iob2`` or ``bioes`` tags."""
    tags = ["O"] * length
    for kind, start, end in entities:
        tags[start:end] = [f"I-{kind}"] * (end - start)
        tags[start] = f"B-{kind}"
        if scheme == "bioes":
            tags[end - 1] = f"{'S' if end - start == 1 else 'E'}-{kind}"
    return tags


@dataclass
class SchemeEvidence:
    """What a corpus's tags say about its scheme, counted entity start by entity start.

    An entity that starts with I- (after O or another type) is IOB1's normal form and an IOB2
    slip; one that starts with B- there is IOB2's form and an IOB1 slip. ``*_at`` keep the first
    few places of each as (sentence index, word index), for the log.
    """

    i_starts: int = 0
    b_starts: int = 0
    bioes: bool = False
    i_starts_at: list[tuple[int, int]] = field(default_factory=list)
    b_starts_at: list[tuple[int, int]] = field(default_factory=list)

    @property
    def scheme(self) -> str:
        """BIOES if any E-/S- (or L-/U-) tag occurs; else IOB1 where I- starts more entities
        than B- does, and IOB2 otherwise (also with no entity at all)."""
        if self.bioes:
            return "bioes"
        return "iob1" if self.i_starts > self.b_starts else "iob2"

    def disagreeing(self) -> tuple[int, list[tuple[int, int]]]:
        """How many entity starts contradict :attr:`scheme`, and the first few of them."""
        if self.scheme == "iob1":
            return self.b_starts, self.b_starts_at
        if self.scheme == "iob2":
            return self.i_starts, self.i_starts_at
        return 0, []


def scheme_evidence(sequences: Iterable[Sequence[str]], keep: int = 5) -> SchemeEvidence:
    """Count the evidence of :class:`SchemeEvidence` (``keep``: places kept per kind).

    By the weight of evidence, not by its mere presence: CoNLL-2003's IOB1 train file has two
    entities that start with B- after O, and "any B- start means IOB2" read its 23,000 I- starts
    as IOB2 slips to repair. Either reading gives the same entities (:func:`to_iob2`), so the
    scheme decides only which starts are reported as the file's slips.
    """
    found = SchemeEvidence()
    for s, tags in enumerate(sequences):
        prev = "O"
        for w, tag in enumerate(tags):
            prefix = split_tag(tag)[0]
            if prefix in ("E", "S", "L", "U"):
                found.bioes = True
                return found
            if prefix in ("I", "B") and not _continues(prev, tag):
                if prefix == "I":
                    found.i_starts += 1
                    at = found.i_starts_at
                else:
                    found.b_starts += 1
                    at = found.b_starts_at
                if len(at) < keep:
                    at.append((s, w))
            prev = tag
    return found


def detect_scheme(sequences: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of a corpus: BIOES when any S-/E- (or BILOU's U-/L-) tag occurs; IOB1
    when more entities start with I- than with B- (B- then mostly separates two adjacent
    entities of one type); else IOB2. See :func:`scheme_evidence`."""
    return scheme_evidence(sequences).scheme


def repair_iob2(tags: Sequence[str]) -> tuple[list[str], int]:
    """Make a sequence valid IOB2 by the module's rule; returns it and how many tags changed."""
    out, fixed, prev = [], 0, "O"
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "I" and not _continues(prev, tag):
            tag, fixed = f"B-{kind}", fixed + 1
        out.append(tag)
        prev = tag
    return out, fixed


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 starts an entity with I- and uses B- only between adjacent same-type entities."""
    return repair_iob2(tags)[0]


def bioes_to_iob2(tags: Sequence[str]) -> list[str]:
    """S- becomes B-, E- becomes I- (BILOU's U- and L- likewise); then the IOB2 repair rule."""
    return to_iob2(tags, "bioes")[0]


def iob2_to_bioes(tags: Sequence[str]) -> list[str]:
    """Single-word entities become S-, last words of longer ones E-; input must be valid IOB2."""
    return tags_from_spans(spans(tags), len(tags), "bioes")


def iob2_to_iob1(tags: Sequence[str]) -> list[str]:
    """B- only where an entity directly follows one of the same type (for round-trip tests)."""
    out, prev_kind = [], ""
    for tag in tags:
        prefix, kind = split_tag(tag)
        out.append(f"I-{kind}" if prefix == "B" and kind != prev_kind else tag)
        prev_kind = kind
    return out


def to_iob2(tags: Sequence[str], scheme: str) -> tuple[list[str], int]:
    """Convert from ``scheme`` to valid IOB2; returns the tags and how many were repaired.

    Repairs count only true errors of the source scheme: for IOB1 an I- starting an entity is the
    scheme's normal form, so converting it is no repair.
    """
    if scheme == "iob1":
        return iob1_to_iob2(tags), 0
    if scheme == "bioes":
        mapped = [(_AS_IOB.get(p, p), k) for p, k in map(split_tag, tags)]
        return repair_iob2([f"{p}-{k}" if k else p for p, k in mapped])
    if scheme == "iob2":
        return repair_iob2(tags)
    raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {SCHEMES}")

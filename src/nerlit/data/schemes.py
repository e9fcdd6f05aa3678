"""Tag schemes: detect IOB1 / IOB2 / BIOES, convert to and from IOB2, repair invalid sequences.

Internally every gold sequence is IOB2 (B- starts every entity). Repair rule, the one conlleval
uses to read a sequence: an I-X that does not continue an entity of type X (it follows O, or a
tag of another type) starts a new entity, so it becomes B-X. No tag is ever dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

SCHEMES = ("auto", "iob1", "iob2", "bioes")


def check_tag(tag: str) -> bool:
    """A tag is O or a one-letter prefix (B, I, E, S; L, U as BILOU aliases) and a type."""
    return tag == "O" or (len(tag) > 2 and tag[1] == "-" and tag[0] in "BIESLU")


def _continues(prev: str, tag: str) -> bool:
    """Whether an I-/E- tag continues the entity open at ``prev``."""
    return prev != "O" and prev[0] in "BI" and prev[2:] == tag[2:]


def detect_scheme(sequences: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of a corpus.

    BIOES when any S-/E- (or BILOU's U-/L-) tag occurs; IOB1 when entities start with I- and B-
    never starts one (B- then only separates two adjacent entities of one type); else IOB2.
    """
    starts_with_i = starts_with_b = 0
    for tags in sequences:
        prev = "O"
        for tag in tags:
            if tag[0] in "ESLU":
                return "bioes"
            if tag[0] == "I" and not _continues(prev, tag):
                starts_with_i += 1
            elif tag[0] == "B" and not _continues(prev, tag):
                starts_with_b += 1
            prev = tag
    return "iob1" if starts_with_i and not starts_with_b else "iob2"


def repair_iob2(tags: Sequence[str]) -> tuple[list[str], int]:
    """Make a sequence valid IOB2 by the module's rule; returns it and how many tags changed."""
    out, fixed, prev = [], 0, "O"
    for tag in tags:
        if tag[0] == "I" and not _continues(prev, tag):
            tag, fixed = "B" + tag[1:], fixed + 1
        out.append(tag)
        prev = tag
    return out, fixed


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 starts an entity with I- and uses B- only between adjacent same-type entities."""
    return repair_iob2(tags)[0]


def bioes_to_iob2(tags: Sequence[str]) -> list[str]:
    """S- becomes B-, E- becomes I- (BILOU's U- and L- likewise); then the IOB2 repair rule."""
    mapped = [
        tag
        if tag == "O"
        else {"S": "B", "U": "B", "E": "I", "L": "I"}.get(tag[0], tag[0]) + tag[1:]
        for tag in tags
    ]
    return repair_iob2(mapped)[0]


def iob2_to_bioes(tags: Sequence[str]) -> list[str]:
    """Single-word entities become S-, last words of longer ones E-; input must be valid IOB2."""
    out = []
    for i, tag in enumerate(tags):
        nxt = tags[i + 1] if i + 1 < len(tags) else "O"
        ends = not (nxt[0] == "I" and nxt[2:] == tag[2:])
        if tag == "O":
            out.append(tag)
        elif tag[0] == "B":
            out.append(("S" if ends else "B") + tag[1:])
        else:
            out.append(("E" if ends else "I") + tag[1:])
    return out


def iob2_to_iob1(tags: Sequence[str]) -> list[str]:
    """B- only where an entity directly follows one of the same type (for round-trip tests)."""
    out, prev = [], "O"
    for tag in tags:
        if tag[0] == "B" and not (prev != "O" and prev[2:] == tag[2:]):
            out.append("I" + tag[1:])
        else:
            out.append(tag)
        prev = tag
    return out


def to_iob2(tags: Sequence[str], scheme: str) -> tuple[list[str], int]:
    """Convert from ``scheme`` to valid IOB2; returns the tags and how many were repaired.

    Repairs count only true errors of the source scheme: for IOB1 an I- starting an entity is the
    scheme's normal form, so converting it is no repair.
    """
    if scheme == "iob1":
        return iob1_to_iob2(tags), 0
    if scheme == "bioes":
        mapped = bioes_to_iob2(tags)
        naive = [
            t if t == "O" else {"S": "B", "U": "B", "E": "I", "L": "I"}.get(t[0], t[0]) + t[1:]
            for t in tags
        ]
        return mapped, sum(a != b for a, b in zip(mapped, naive))
    if scheme == "iob2":
        return repair_iob2(tags)
    raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {SCHEMES}")

"""Tag scheme conversion. Internally every tag sequence is IOB2 (B- starts every entity)."""

from __future__ import annotations

from collections.abc import Sequence


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 starts an entity with I- and uses B- only between two adjacent same-type entities.

    An I- tag starts a new entity unless the previous tag belongs to the same type.
    """
    out: list[str] = []
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def check_tag(tag: str) -> bool:
    """A tag is O or a B-/I- prefix followed by a non-empty type."""
    return tag == "O" or (len(tag) > 2 and tag[:2] in ("B-", "I-"))

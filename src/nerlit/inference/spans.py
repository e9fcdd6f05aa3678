"""Decoded tags -> entities with character offsets and scores: what ``Tagger.predict`` returns.

Tags come from the one decoder (:mod:`nerlit.models.decoding`), so they are valid IOB2; spans are
read off them by :func:`nerlit.data.schemes.spans`, the one tag-to-span rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from nerlit.data.schemes import spans
from nerlit.data.types import Entity


def entities_from_tags(
    tags: Sequence[str],
    probs: Sequence[float],
    words: Sequence[tuple[str, int, int]],
    text: str,
) -> list[Entity]:
    """The entities :func:`nerlit.data.schemes.spans` reads off ``tags``, with offsets into
    ``text`` from ``words`` ((word, start, end) each) and the mean of ``probs`` over each span."""
    entities = []
    for kind, first, last in spans(tags):
        start, end = words[first][1], words[last - 1][2]
        score = round(float(sum(probs[first:last]) / (last - first)), 6)
        entities.append(Entity(text[start:end], kind, start, end, score, first, last))
    return entities

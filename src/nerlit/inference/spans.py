"""Per-word label scores -> one valid tag per word -> entities with character offsets.

Two decoders, named as ``model.decode`` names them in training. ``argmax`` takes each word's best
label, exactly as the Hugging Face pipeline's ``aggregation_strategy="first"`` does, and groups
words into entities the way the pipeline does (a stray ``I-x`` after ``O`` starts an entity, as if
it were ``B-x``). ``constrained`` finds the best tag sequence that is valid in the model's scheme
(IOB2 or BIOES: no ``I-x`` after ``O`` or after another type), so the model's probabilities, not a
repair rule, decide where an entity starts; for a CRF-head model it uses the learned transition
scores too. Either way every entity is a run of whole words with one type.

The Viterbi here is NumPy rather than ``nerlit.models.decoding.viterbi`` (torch), which training
uses: at inference a single text can have thousands of words, and per-step torch dispatch made a
2,000-word line take seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from nerlit.data.schemes import spans
from nerlit.data.types import Entity
from nerlit.models.decoding import allowed_transitions

DECODERS = ("constrained", "argmax")
ALIASES = {"viterbi": "constrained"}


def transition_scores(
    labels: Sequence[str], crf: dict[str, torch.Tensor] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(transition, start, end) scores: 0 or a CRF's learned score where allowed, -inf where not."""
    transitions, first, last = allowed_transitions(labels)
    learned = crf or {}
    out = []
    for mask, key in ((transitions, "transitions"), (first, "start"), (last, "end")):
        base = learned[key].float().numpy() if key in learned else np.zeros(mask.shape)
        out.append(np.where(mask.numpy(), base, -np.inf))
    return out[0], out[1], out[2]


def viterbi(
    log_probs: Sequence[torch.Tensor],
    transitions: torch.Tensor | np.ndarray,
    first: torch.Tensor | np.ndarray,
    last: torch.Tensor | np.ndarray,
    chunk: int = 256,
) -> list[list[int]]:
    """Best label sequence per sentence; sentences are decoded in padded chunks at once.

    Boolean ``transitions``/``first``/``last`` are constraints (allowed or not); float ones are
    scores (see :func:`transition_scores`), added to the per-word ``log_probs``.
    """
    out: list[list[int]] = [[] for _ in log_probs]
    order = sorted(range(len(log_probs)), key=lambda i: -len(log_probs[i]))
    order = [i for i in order if len(log_probs[i])]
    blocked, start_mask, end_mask = (
        np.where(m, 0.0, -np.inf) if m.dtype == bool else m.astype(np.float64)
        for m in (np.asarray(transitions), np.asarray(first), np.asarray(last))
    )
    blocked = blocked[None]  # [1, prev, next]
    n_labels = len(start_mask)
    for c in range(0, len(order), chunk):
        rows = order[c : c + chunk]
        lengths = np.array([len(log_probs[i]) for i in rows])
        width = int(lengths.max())
        scores = np.zeros((len(rows), width, n_labels))
        for r, i in enumerate(rows):
            scores[r, : lengths[r]] = log_probs[i].numpy()
        best = scores[:, 0] + start_mask
        back = np.zeros((len(rows), width, n_labels), dtype=np.int64)
        for t in range(1, width):
            total = best[:, :, None] + blocked
            pointer = total.argmax(axis=1)
            value = np.take_along_axis(total, pointer[:, None, :], axis=1)[:, 0] + scores[:, t]
            active = (lengths > t)[:, None]
            best = np.where(active, value, best)
            back[:, t] = pointer
        tag = (best + end_mask).argmax(axis=1)
        paths = np.zeros((len(rows), width), dtype=np.int64)
        for t in range(width - 1, -1, -1):
            inside = lengths > t
            paths[inside, t] = tag[inside]
            if t:
                previous = back[np.arange(len(rows)), t, tag]
                tag = np.where(inside, previous, tag)
        for r, i in enumerate(rows):
            out[i] = paths[r, : lengths[r]].tolist()
    return out


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

"""From per-word scores of whole sentences to one valid IOB2 tag per word: the one decoder.

Validation, test, ``evaluate``, ``predict`` and ``Tagger`` all call :func:`decode_words` on the
same input: each word's scores (its first subword's logits) after the windows of a sentence were
merged, so a long sentence is decoded once, never per window. The methods:

- ``argmax``: each word's best label on its own; a stray ``I-X`` (after ``O`` or another type)
  then starts an entity, the rule of the Hugging Face pipeline and of conlleval, so the output is
  valid IOB2 and strict scoring of it means the same everywhere.
- ``constrained``: the best *valid* sequence under the softmax log-probabilities (Viterbi with
  forbidden transitions); with a CRF head, under its learned transition scores.

Viterbi is written here rather than taken from a library: the PyTorch CRF packages
(pytorch-crf, TorchCRF) are unmaintained and cannot forbid transitions. It is NumPy: a sentence
can have thousands of words, and per-step torch dispatch made a 2,000-word line take seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from nerlit.data.schemes import bioes_to_iob2, repair_iob2, split_tag

NEG_INF = -1e4  # finite, so masked sums stay finite in bf16/fp32 alike (the CRF's training loss)

DECODERS = ("constrained", "argmax")

#: float64 sums one Viterbi step may hold (32 MB): the sentences decoded together shrink as
#: labels grow, so no label count holds [256 sentences, from, to] (600 types: 6.2 GB) at once
STEP_ELEMENTS = 2**22


def allowed_transitions(labels: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which label may follow which (``[from, to]``), start and end rules, for IOB2 or BIOES.

    IOB2: I-X only after B-X or I-X, never first. BIOES additionally: after B-X/I-X only I-X or
    E-X; B-X/I-X may not end a sequence; E-X only after B-X/I-X.
    """
    parts = [split_tag(label) for label in labels]
    bioes = any(prefix in ("E", "S") for prefix, _ in parts)
    n = len(labels)
    allowed = torch.ones(n, n, dtype=torch.bool)
    start = torch.ones(n, dtype=torch.bool)
    end = torch.ones(n, dtype=torch.bool)
    for j, (prefix, kind) in enumerate(parts):
        if prefix in ("I", "E"):
            start[j] = False
            for i, (before, other) in enumerate(parts):
                allowed[i, j] = before in ("B", "I") and other == kind
        if bioes and prefix in ("B", "I"):
            end[j] = False
            for k, (after, other) in enumerate(parts):
                allowed[j, k] = after in ("I", "E") and other == kind
    return allowed, start, end


def _column_groups(transitions: np.ndarray) -> tuple[int, np.ndarray, list[tuple[np.ndarray, ...]]]:
    """The "to" columns of ``transitions`` without repeats, grouped by how many "from" labels
    may precede each (its entries above -inf): (number of distinct columns, each label's
    distinct column, and per group its columns [u], their "from" labels [u, k] ascending and
    scores [u, k])."""
    unique, inverse = np.unique(transitions.T, axis=0, return_inverse=True)
    by_size: dict[int, list[tuple[int, np.ndarray]]] = {}
    for u, column in enumerate(unique):
        allowed = np.flatnonzero(column > -np.inf)
        allowed = allowed if len(allowed) else np.arange(len(column))
        by_size.setdefault(len(allowed), []).append((u, allowed))
    groups = []
    for members in by_size.values():
        columns = np.array([u for u, _ in members])
        sources = np.stack([allowed for _, allowed in members])
        groups.append((columns, sources, unique[columns[:, None], sources]))
    return len(unique), inverse.reshape(-1), groups


def _full_step(best: np.ndarray, transitions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each label's best "from" label over all of them, and its sum: [from, to] sums for as
    many sentences at a time as :data:`STEP_ELEMENTS` allows."""
    pointer = np.empty(best.shape, dtype=np.int64)
    value = np.empty(best.shape)
    block = max(1, STEP_ELEMENTS // transitions.size)
    for b in range(0, len(best), block):
        total = best[b : b + block, :, None] + transitions[None]
        pointer[b : b + block] = total.argmax(axis=1)
        value[b : b + block] = np.take_along_axis(total, pointer[b : b + block, None], 1)[:, 0]
    return pointer, value


def viterbi(
    scores: Sequence[torch.Tensor],
    transitions: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    chunk: int = 256,
) -> list[list[int]]:
    """Best label sequence per sentence under per-word ``scores`` [words, labels] plus
    ``transitions`` [from, to], ``first`` and ``last`` scores (-inf where forbidden).

    Sentences are decoded in padded chunks, longest first, so only the time loop is in Python.
    Each step takes, for every label, the best of the labels allowed before it: an I-X follows
    only B-X or I-X, so its best is over 2 scores, not all of them, and labels whose transition
    columns are equal (O and every B-X, without a CRF) share one. With 600 entity types (1,201
    labels) a step then adds ~2,400 scores per sentence where the full [from, to] sum added
    1.4 million and, 256 sentences at a time, held 6.2 GB. It is the same maximum: over the
    allowed labels in ascending order the first best is the full argmax's, and a label no
    allowed label reaches (all -inf) gets pointer 0, as the full argmax gives it. Scores that
    are not all finite (a diverged model) take the full sum, whose NaN/inf arithmetic differs.
    A step holds at most :data:`STEP_ELEMENTS` sums (fewer sentences per chunk as labels grow);
    each sentence is decoded on its own, so chunking changes no result. Back-pointers are kept
    in the smallest signed integer type that holds a label id (int8 up to 128 labels, int16 up
    to 32,768), not int64: the one array that grows with words x labels.
    """
    out: list[list[int]] = [[] for _ in scores]
    order = sorted((i for i in range(len(scores)) if len(scores[i])), key=lambda i: -len(scores[i]))
    n = len(first)
    rules = np.concatenate([transitions.ravel(), first, last])
    rules_finite = bool((rules < np.inf).all())  # -inf (forbidden) or a number
    count, inverse, groups = _column_groups(transitions)
    per_sentence = max(n, sum(sources.size for _, sources, _ in groups))
    chunk = max(1, min(chunk, STEP_ELEMENTS // per_sentence))
    pointer_type = np.min_scalar_type(-n)  # signed: the path arithmetic below stays signed
    for c in range(0, len(order), chunk):
        rows = order[c : c + chunk]
        lengths = np.array([len(scores[i]) for i in rows])
        width = int(lengths.max())
        emissions = np.zeros((len(rows), width, n))
        for r, i in enumerate(rows):
            emissions[r, : lengths[r]] = scores[i].float().numpy()
        full = not rules_finite or not np.isfinite(emissions).all()
        best = emissions[:, 0] + first
        back = np.zeros((len(rows), width, n), dtype=pointer_type)
        pointer = np.zeros((len(rows), count), dtype=np.int64)
        value = np.zeros((len(rows), count))
        for t in range(1, width):
            if full:
                step_pointer, step_value = _full_step(best, transitions)
            else:
                for columns, sources, moves in groups:
                    total = best[:, sources] + moves  # [sentences, columns, allowed]
                    k = total.argmax(axis=2)
                    pointer[:, columns] = sources[np.arange(len(columns)), k]
                    value[:, columns] = np.take_along_axis(total, k[:, :, None], axis=2)[:, :, 0]
                step_pointer = np.where(np.isneginf(value), 0, pointer)[:, inverse]
                step_value = value[:, inverse]
            best = np.where((lengths > t)[:, None], step_value + emissions[:, t], best)
            back[:, t] = step_pointer
        tag = (best + last).argmax(axis=1)
        paths = np.zeros((len(rows), width), dtype=np.int64)
        for t in range(width - 1, -1, -1):
            inside = lengths > t
            paths[inside, t] = tag[inside]
            if t:
                tag = np.where(inside, back[np.arange(len(rows)), t, tag], tag)
        for r, i in enumerate(rows):
            out[i] = paths[r, : lengths[r]].tolist()
    return out


def transition_scores(
    labels: Sequence[str], learned: dict[str, torch.Tensor] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(transitions, first, last): 0 or a CRF's ``learned`` score where allowed, else -inf."""
    out = []
    for mask, key in zip(allowed_transitions(labels), ("transitions", "start", "end")):
        base = learned[key].detach().float().numpy() if learned else np.zeros(mask.shape)
        out.append(np.where(mask.numpy(), base, -np.inf))
    return out[0], out[1], out[2]


def decode_words(
    word_logits: Sequence[torch.Tensor],
    labels: Sequence[str],
    method: str = "constrained",
    crf: dict[str, torch.Tensor] | None = None,
) -> tuple[list[list[str]], list[list[float]]]:
    """Valid IOB2 tags per word of each sentence, and the probability of each word's label.

    ``word_logits``: per sentence, [words, labels] logits at each word's first subword, windows
    already merged. ``crf``: a CRF head's learned scores (``transitions``, ``start``, ``end``),
    used by ``constrained``. A model trained on BIOES tags is decoded in BIOES and returned in
    IOB2, the scheme every score and output uses.
    """
    if method not in DECODERS:
        raise ValueError(f"decode={method!r} is not one of {DECODERS}")
    if not word_logits:
        return [], []
    # one log_softmax and one gather over all words, not a few small torch calls per sentence
    # (which took ~0.2 ms each: a server's decode of many short texts was mostly call overhead)
    lengths = [len(logits) for logits in word_logits]
    flat = torch.cat([logits.float() for logits in word_logits]).log_softmax(-1)
    log_probs = list(flat.split(lengths))
    ends = np.cumsum(lengths).tolist()
    if method == "argmax":
        best = flat.argmax(-1).tolist()
        ids = [best[end - n : end] for n, end in zip(lengths, ends)]
    elif crf is not None:
        ids = viterbi([lg.float() for lg in word_logits], *transition_scores(labels, crf))
    else:
        ids = viterbi(log_probs, *transition_scores(labels))
    bioes = any(split_tag(label)[0] in ("E", "S") for label in labels)
    tags = []
    for row in ids:
        sequence = [labels[y] for y in row]
        sequence = bioes_to_iob2(sequence) if bioes else sequence
        tags.append(repair_iob2(sequence)[0])
    chosen = torch.tensor([y for row in ids for y in row], dtype=torch.long).view(-1, 1)
    flat_probs = flat.gather(1, chosen).exp().view(-1).tolist()
    return tags, [flat_probs[end - n : end] for n, end in zip(lengths, ends)]


def words_from_windows(
    sentence_index: torch.Tensor,
    word_index: torch.Tensor,
    values: torch.Tensor,
    lengths: Sequence[int],
    fill: float = 0,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Scatter per-owned-token values (label ids [N] or scores [N, L]) into per-sentence tensors.

    Every word is owned by exactly one window, so each slot is written once. Slots that got no
    value (Lightning limited the eval batches) keep ``fill``; the second list marks, per
    sentence, which words were written.
    """
    offsets = torch.tensor([0, *lengths]).cumsum(0)
    total = int(offsets[-1])
    flat = torch.empty((total, *values.shape[1:]), dtype=values.dtype)
    flat[:] = fill
    written = torch.zeros(total, dtype=torch.bool)
    slots = offsets[sentence_index] + word_index
    flat[slots] = values
    written[slots] = True
    return list(flat.split(list(lengths))), list(written.split(list(lengths)))

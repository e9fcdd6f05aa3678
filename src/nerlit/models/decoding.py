"""From per-token scores back to one valid label per word.

Viterbi is written here rather than taken from a library: the PyTorch CRF packages
(pytorch-crf, TorchCRF) are unmaintained and have no way to forbid transitions, and the
algorithm is a dozen vectorized lines. Batches are decoded together; only the time loop is in
Python.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

NEG_INF = -1e4  # finite, so masked sums stay finite in bf16/fp32 alike

DECODERS = ("constrained", "argmax")


def allowed_transitions(labels: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which label may follow which (``[from, to]``), start and end rules, for IOB2 or BIOES.

    IOB2: I-X only after B-X or I-X, never first. BIOES additionally: after B-X/I-X only I-X or
    E-X; B-X/I-X may not end a sequence; E-X only after B-X/I-X.
    """
    bioes = any(label[:2] in ("E-", "S-") for label in labels)
    n = len(labels)
    allowed = torch.ones(n, n, dtype=torch.bool)
    start = torch.ones(n, dtype=torch.bool)
    end = torch.ones(n, dtype=torch.bool)
    for j, to in enumerate(labels):
        prefix, kind = to[:1], to[2:]
        if prefix in ("I", "E"):
            start[j] = False
            for i, frm in enumerate(labels):
                allowed[i, j] = frm[:1] in ("B", "I") and frm[2:] == kind
        if bioes and prefix in ("B", "I"):
            end[j] = False
            for k, nxt in enumerate(labels):
                allowed[j, k] = nxt[:1] in ("I", "E") and nxt[2:] == kind
    return allowed, start, end


def viterbi(
    emissions: torch.Tensor,
    mask: torch.Tensor,
    transitions: torch.Tensor,
    start: torch.Tensor,
    end: torch.Tensor,
) -> torch.Tensor:
    """Best label sequence per row. ``emissions`` [B, T, L]; ``mask`` [B, T] left-aligned.

    Returns [B, T] label ids (0 beyond each row's length).
    """
    batch, steps, _ = emissions.shape
    if steps == 0:
        return mask.long()
    emissions, transitions = emissions.float(), transitions.float()
    score = start.float() + emissions[:, 0]
    history = []
    for t in range(1, steps):
        candidate = score.unsqueeze(2) + transitions.unsqueeze(0)  # [B, from, to]
        best, index = candidate.max(dim=1)
        live = mask[:, t].unsqueeze(1)
        score = torch.where(live, best + emissions[:, t], score)
        stay = torch.arange(index.size(1), device=index.device).expand_as(index)
        history.append(torch.where(live, index, stay))
    score = score + end.float()
    path = [score.argmax(dim=1)]
    for index in reversed(history):
        path.append(index.gather(1, path[-1].unsqueeze(1)).squeeze(1))
    path.reverse()
    return torch.stack(path, dim=1) * mask.long()


def constrained_decode(
    log_probs: Sequence[torch.Tensor], labels: Sequence[str], chunk: int = 1024
) -> list[list[int]]:
    """Most probable *valid* label sequence of each sentence under per-word log-probabilities."""
    allowed, start, end = allowed_transitions(labels)
    transitions = torch.zeros(allowed.shape).masked_fill(~allowed, NEG_INF)
    start_score = torch.zeros(len(labels)).masked_fill(~start, NEG_INF)
    end_score = torch.zeros(len(labels)).masked_fill(~end, NEG_INF)
    out: list[list[int]] = []
    for first in range(0, len(log_probs), chunk):
        part = log_probs[first : first + chunk]
        lengths = torch.tensor([len(p) for p in part])
        padded = torch.nn.utils.rnn.pad_sequence(list(part), batch_first=True)
        mask = torch.arange(padded.size(1)).unsqueeze(0) < lengths.unsqueeze(1)
        best = viterbi(padded, mask, transitions, start_score, end_score)
        out += [row[:n].tolist() for row, n in zip(best, lengths.tolist())]
    return out


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

"""Token-classification heads on top of the encoder: linear (softmax) or CRF."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nerlit.models.decoding import NEG_INF, allowed_transitions

HEADS = ("linear", "crf")


def compact(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather the masked positions of each row to the left: [B, T, ...] -> [B, W, ...].

    The CRF runs over labelled positions (each word's first subword) only, so a word's
    continuation subwords never sit between two of its transitions.
    """
    counts = mask.sum(1)
    width = int(counts.max()) if mask.numel() else 0
    out = values.new_zeros((values.size(0), width, *values.shape[2:]))
    rows = mask.nonzero(as_tuple=True)[0]
    cols = (mask.cumsum(1) - 1)[mask]
    out[rows, cols] = values[mask]
    compact_mask = torch.arange(width, device=mask.device).unsqueeze(0) < counts.unsqueeze(1)
    return out, compact_mask


class CRF(nn.Module):
    """A linear-chain CRF whose transitions forbid invalid moves (I-X after O, etc.).

    Forbidden transitions are fixed at a large negative score rather than learned, so decoding
    can never produce an ill-formed span, from the first step of training on.
    """

    def __init__(self, labels: Sequence[str]) -> None:
        super().__init__()
        n = len(labels)
        self.transitions = nn.Parameter(torch.zeros(n, n))
        self.start = nn.Parameter(torch.zeros(n))
        self.end = nn.Parameter(torch.zeros(n))
        allowed, start, end = allowed_transitions(labels)
        self.register_buffer("allowed", allowed, persistent=False)
        self.register_buffer("start_allowed", start, persistent=False)
        self.register_buffer("end_allowed", end, persistent=False)

    def learned(self) -> dict[str, torch.Tensor]:
        """The learned scores by name, for :func:`nerlit.models.decoding.decode_words`."""
        return {"transitions": self.transitions, "start": self.start, "end": self.end}

    def scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            self.transitions.masked_fill(~self.allowed, NEG_INF),
            self.start.masked_fill(~self.start_allowed, NEG_INF),
            self.end.masked_fill(~self.end_allowed, NEG_INF),
        )

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of ``tags`` ([B, W], left-aligned ``mask``)."""
        emissions = emissions.float()
        transitions, start, end = self.scores()
        batch = torch.arange(emissions.size(0), device=emissions.device)
        lengths = mask.sum(1)
        # score of the gold path
        gold = start[tags[:, 0]] + emissions[batch, 0, tags[:, 0]]
        for t in range(1, tags.size(1)):
            step = transitions[tags[:, t - 1], tags[:, t]] + emissions[batch, t, tags[:, t]]
            gold = gold + step * mask[:, t]
        gold = gold + end[tags[batch, lengths - 1]]
        # log partition function: the forward algorithm
        alpha = start + emissions[:, 0]
        for t in range(1, emissions.size(1)):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + transitions.unsqueeze(0), dim=1)
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt + emissions[:, t], alpha)
        log_z = torch.logsumexp(alpha + end, dim=1)
        return (log_z - gold).mean()

"""From per-token predictions back to one label per word."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def words_from_windows(
    sentence_index: torch.Tensor,
    word_index: torch.Tensor,
    label_ids: torch.Tensor,
    lengths: Sequence[int],
) -> tuple[list[list[int]], int]:
    """Scatter flat (sentence, word, label) triples into per-sentence lists.

    Every word is owned by exactly one window, so each slot is written once. Returns the lists
    (-1 where no prediction arrived, e.g. when Lightning limits eval batches) and how many slots
    are missing.
    """
    out = [[-1] * n for n in lengths]
    for s, w, y in zip(sentence_index.tolist(), word_index.tolist(), label_ids.tolist()):
        out[s][w] = y
    missing = sum(row.count(-1) for row in out)
    return out, missing

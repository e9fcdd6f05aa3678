"""Random streams tied to the position in training: a resumed run continues like an unbroken one."""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch


class StepSeed(L.Callback):
    """Seeds torch, numpy and Python before every training batch from (seed, epoch, batch, rank).

    Lightning restores weights, optimizer, scheduler and loop counters on resume, but not the
    random generators, so a resumed run would draw other dropout masks than the run it continues.
    Saving generator states in the checkpoint is not enough: after an end-of-epoch checkpoint an
    uninterrupted run creates the next epoch's DataLoader iterator, which draws from torch's
    generator, while a resumed run creates it before any hook could restore a state. A stream
    that is a function of the position in training is restored exactly by restoring the
    position, which Lightning does. The rank is part of the seed, so DDP ranks draw different
    masks; the seed makes runs with the same ``seed`` repeat.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        position = [self.seed, trainer.current_epoch, batch_idx, trainer.global_rank]
        seed = int(np.random.SeedSequence(position).generate_state(1)[0])
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

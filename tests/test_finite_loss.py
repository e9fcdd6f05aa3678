"""The first NaN or infinite training loss stops a fit, with no host sync per step on a GPU.
Imports torch and Lightning alone, so a GPU machine runs it with --noconftest."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from nerlit.callbacks.finite_loss import StopOnNonFiniteLoss
from nerlit.errors import TrainingError


def _trainer(every: int = 5, precision: str = "bf16-mixed") -> SimpleNamespace:
    weight = torch.nn.Parameter(torch.zeros(1))
    return SimpleNamespace(
        global_step=0,
        log_every_n_steps=every,
        world_size=1,
        sanity_checking=False,
        optimizers=[torch.optim.SGD([weight], lr=1e6)],
        precision=precision,
    )


def _steps(callback: StopOnNonFiniteLoss, trainer: SimpleNamespace, losses: torch.Tensor) -> None:
    for step in range(len(losses)):
        trainer.global_step = step
        callback.on_before_backward(trainer, None, losses[step])


def test_cpu_stops_at_the_first_bad_step_before_its_backward():
    callback, trainer = StopOnNonFiniteLoss(), _trainer()
    with pytest.raises(TrainingError) as caught:
        _steps(callback, trainer, torch.tensor([2.0, 1.5, float("inf"), float("nan")]))
    assert trainer.global_step == 2, "stopped at once, not at the next log step"
    assert str(caught.value).startswith(
        "the training loss was inf at step 2: training diverged, and the run stopped there (its "
        "checkpoints, if any, are from before) with optimizer.lr=1e+06, "
        "trainer.precision=bf16-mixed. The usual cause is a learning rate too high"
    )


def test_fp16_is_named_as_the_cause():
    callback, trainer = StopOnNonFiniteLoss(), _trainer(precision="16-mixed")
    with pytest.raises(TrainingError, match="fp16 overflows where bf16 does not"):
        _steps(callback, trainer, torch.tensor([float("nan")]))


def test_finite_losses_pass_and_every_check_point_reads_the_flag():
    callback, trainer = StopOnNonFiniteLoss(), _trainer()
    _steps(callback, trainer, torch.tensor([2.0, 1.0, 0.5]))
    callback.on_validation_start(trainer, None)
    callback.on_train_epoch_end(trainer, None)
    callback.on_train_end(trainer, None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_flag_is_read_only_every_log_every_n_steps():
    callback, trainer = StopOnNonFiniteLoss(), _trainer(every=5)
    losses = torch.tensor([2.0, float("nan"), 1.0, 3.0, 4.0, 5.0], device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any host sync in steps 0-3 raises
    try:
        _steps(callback, trainer, losses[:4])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    trainer.global_step = 4  # (4 + 1) % 5 == 0: the step whose loss Lightning reads anyway
    with pytest.raises(TrainingError, match=r"^the training loss was nan at step 1: "):
        callback.on_before_backward(trainer, None, losses[4])

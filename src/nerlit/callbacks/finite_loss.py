"""Stop a fit at its first NaN or infinite training loss, naming the step and the usual causes."""

from __future__ import annotations

import lightning as L
import torch

from nerlit.errors import TrainingError

#: the "no bad step yet" value of the device flag (a step number would be smaller)
_NONE = 2**62


class StopOnNonFiniteLoss(L.Callback):
    """Raise :class:`~nerlit.errors.TrainingError` once a training loss was NaN or infinite.

    Without it, ``optimizer.lr=1e6`` trained to the end on NaN weights, tested them, and reported
    F1 0 with no warning. Lightning's own checks do not fit: ``trainer.detect_anomaly`` is
    autograd's anomaly mode (every backward op checked, a host sync each, several times slower,
    and its error is a traceback), and EarlyStopping's ``check_finite`` looks at a monitored
    metric only where it evaluates (an epoch's end) and then stops quietly, so the run still
    tests and reports the broken model.

    The loss is checked without a host sync per step on an accelerator: each step folds
    ``isfinite(loss)`` into a device tensor holding the first bad step (two tiny kernels, nothing
    read back), and that tensor is read every ``trainer.log_every_n_steps`` steps, the steps
    whose logged loss Lightning reads back anyway, and before each validation, at each epoch's
    end and when fit ends, so no checkpoint is saved from NaN weights. The step named is the
    first bad one, even when it is found up to ``log_every_n_steps`` steps later. On a CPU reading
    a value costs nothing, so every step is checked before its backward pass. Under DDP the
    ranks agree on the first bad step of any rank (a min-reduce, only when the flag is read), so
    they stop together.
    """

    def __init__(self) -> None:
        self._first: torch.Tensor | None = None  # the first bad step, or _NONE
        self._value: torch.Tensor | None = None  # that step's loss

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        loss = loss.detach()
        if self._first is None or self._first.device != loss.device:
            self._first = torch.full((), _NONE, dtype=torch.long, device=loss.device)
            self._value = torch.zeros((), dtype=torch.float32, device=loss.device)
        step = trainer.global_step
        newly = ~torch.isfinite(loss) & (self._first == _NONE)
        self._first = torch.where(newly, step, self._first)
        self._value = torch.where(newly, loss.float(), self._value)
        every = trainer.log_every_n_steps or 1
        if loss.device.type == "cpu" or (step + 1) % every == 0:
            self._check(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._check(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: L.Trainer) -> None:
        if self._first is None:
            return
        first = self._first
        if trainer.world_size > 1:
            first = trainer.strategy.reduce(first.clone(), reduce_op="min")
        step = int(first)
        if step == _NONE:
            return
        mine = int(self._first) == step
        loss = f"{float(self._value)}" if mine else "not finite (on another rank)"
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        lr = optimizer.defaults.get("lr") if optimizer is not None else None
        shown = f"{lr:g}" if isinstance(lr, (int, float)) else str(lr)
        precision = str(trainer.precision)
        fp16 = "16" in precision and "bf16" not in precision
        raise TrainingError(
            f"the training loss was {loss} at step {step}: training diverged, and the run stopped "
            f"there (its checkpoints, if any, are from before) with optimizer.lr={shown}, "
            f"trainer.precision={precision}. "
            + (
                "fp16 overflows where bf16 does not: set trainer.precision=bf16-mixed (or "
                "32-true), or lower optimizer.lr"
                if fp16
                else "The usual cause is a learning rate too high (BERT-family encoders "
                "fine-tune at 1e-5 to 1e-4): lower optimizer.lr"
            )
        )

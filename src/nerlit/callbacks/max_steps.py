"""Validate before ``trainer.max_steps`` ends a fit that has not validated yet."""

from __future__ import annotations

import lightning as L


class ValidateBeforeMaxSteps(L.Callback):
    """Validate before ``trainer.max_steps`` ends a fit that has not validated yet.

    Lightning validates at the end of an epoch (``val_check_interval=1.0``) and does not when
    ``max_steps`` stops training inside the first one, so such a run (a smoke test, a step
    budget) had no ``val/f1``, no best checkpoint, and tested whatever weights were left.
    Asking the trainer to stop at the last step is what makes Lightning validate there (as it
    does for early stopping), so the checkpoint callbacks save as after any validation. Added by
    ``nerlit train`` when it fits, not by its ``build``: a test that builds a trainer gets
    Lightning's own loop. An epoch that is not validated at all (``check_val_every_n_epoch`` > 1)
    stays unvalidated.
    """

    def __init__(self) -> None:
        self.validated = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.validated = True

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        if not self.validated and 0 < trainer.max_steps <= trainer.global_step:
            trainer.should_stop = True

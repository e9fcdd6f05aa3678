"""Training throughput in words and subword tokens per second, validation time excluded."""

from __future__ import annotations

import logging
import time

import lightning as L

import nerlit

log = logging.getLogger(__name__)


class TokenThroughput(L.Callback):
    """Counts real (unpadded) tokens and words of each training batch against wall time.

    Counting reads ``attention_mask``/``word_index`` on the host side of the batch the loader
    built, before they move to the device, so it adds no device synchronisation to the step.
    """

    def __init__(self) -> None:
        self.tokens = 0
        self.words = 0
        self.seconds = 0.0
        self._mark: float | None = None
        #: seconds from nerlit's import to the end of the first optimizer step
        self.startup_seconds: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._mark = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self.startup_seconds is None:
            self.startup_seconds = now - nerlit.STARTED
            log.info(
                "first optimizer step %.1f s after start (imports, reading and tokenizing the "
                "corpus, building the model, the first step)",
                self.startup_seconds,
            )
        if self._mark is not None:
            self.seconds += now - self._mark
        self._mark = now
        self.tokens += int(batch["num_tokens"])
        self.words += int(batch["num_words"])

    def on_validation_end(self, trainer, pl_module) -> None:
        self._mark = time.perf_counter()  # validation time does not count as training time

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.seconds > 0:
            pl_module.log("train/tokens_per_s", self.tokens / self.seconds)
            pl_module.log("train/words_per_s", self.words / self.seconds)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def words_per_s(self) -> float:
        return self.words / self.seconds if self.seconds else 0.0

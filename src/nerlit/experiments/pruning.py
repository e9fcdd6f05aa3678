"""Pruning for ``hparams_search=optuna``: a trial reports ``val/f1`` and stops when told to.

Why not optuna-integration's ``PyTorchLightningPruningCallback``: it works with ``lightning``
2.6, but on one device it raises ``optuna.TrialPruned`` out of ``trainer.fit``, so a pruned run
never tests its best checkpoint nor writes ``summary.json`` (sweep.md lists it as failed, W&B
marks it crashed); under DDP it needs ``check_pruned()`` called after ``fit``. This callback
stops the run the way early stopping does (``trainer.should_stop``), so a pruned job ends like
a short complete one, and marks its trial with :data:`PRUNED_ATTR`, from which the sweeper
records it as PRUNED. Only rank 0 talks to the study; the decision is broadcast to all ranks.

The job runs in another process than the sweeper (Submitit) or in the same one (the basic
launcher), so it gets its trial through the study's storage: the sweeper passes the trial
number as an override (``optuna_trial=N``), conf/hparams_search/optuna.yaml hands it, the
storage, the study name and the pruner to this callback. Optuna is imported only when a trial
is set, so nerlit does not need it installed unless a search runs.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

import lightning as L

if TYPE_CHECKING:
    import optuna

from hydra_plugins.nerlit_optuna_sweeper import PRUNED_ATTR

log = logging.getLogger(__name__)


class OptunaPruning(L.Callback):
    """Reports ``monitor`` after each validation to trial ``trial`` of the study in ``storage``.

    The step reported is the validation's index (0, 1, ...), not the epoch or optimizer step:
    trials with different batch sizes validate at the same fractions of training but after
    different step counts, and a pruner compares trials at equal steps. Without a trial number
    or storage (a run outside a search) the callback does nothing.
    """

    def __init__(
        self,
        trial: int | None,
        storage: str | None,
        study_name: str | None,
        pruner: optuna.pruners.BasePruner | None = None,
        monitor: str = "val/f1",
    ) -> None:
        self.trial_number = trial
        self.storage = storage
        self.study_name = study_name
        self.pruner = pruner
        self.monitor = monitor
        self.validations = 0
        self.pruned = False
        self._trial: optuna.trial.Trial | None = None
        self._loaded = False
        self._warned = False

    @property
    def active(self) -> bool:
        return self.trial_number is not None and self.storage is not None

    def _load_trial(self) -> optuna.trial.Trial | None:
        import optuna

        pruner = self.pruner if self.pruner is not None else optuna.pruners.NopPruner()
        study = optuna.load_study(study_name=self.study_name, storage=self.storage, pruner=pruner)
        trial_id = study._storage.get_trial_id_from_study_id_trial_number(
            study._study_id, self.trial_number
        )
        state = study._storage.get_trial(trial_id).state
        if state != optuna.trial.TrialState.RUNNING:
            log.warning("trial %d is %s, not running: no pruning", self.trial_number, state.name)
            return None
        return optuna.trial.Trial(study, trial_id)

    def _report(self, value: float) -> bool:
        """Rank 0: report the value; whether the pruner stops the trial here."""
        if not self._loaded:
            self._trial, self._loaded = self._load_trial(), True
        if self._trial is None:
            return False
        step = self.validations
        self._trial.report(value, step=step)
        if not self._trial.should_prune():
            return False
        self._trial.set_user_attr(PRUNED_ATTR, step)
        log.info(
            "trial %d pruned after validation %d (%s %.4f)",
            self.trial_number,
            step,
            self.monitor,
            value,
        )
        return True

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.active or trainer.sanity_checking:
            return
        if self.pruned:
            trainer.should_stop = True  # min_epochs may keep the loop going; keep asking
            return
        score = trainer.callback_metrics.get(self.monitor)
        if score is None:
            if not self._warned:
                warnings.warn(
                    f"no {self.monitor!r} after validation: nothing to prune on", stacklevel=1
                )
                self._warned = True
            return
        prune = self._report(float(score)) if trainer.is_global_zero else False
        self.validations += 1
        if trainer.strategy.broadcast(prune):
            self.pruned = True
            trainer.should_stop = True

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # in-process jobs (the basic launcher) would otherwise keep one database engine each
        self._trial, self._loaded = None, False

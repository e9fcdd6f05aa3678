"""``hydra/sweeper=optuna``: hyperparameter search with Optuna >= 4 through Hydra's launcher.

Why our own sweeper: the official ``hydra-optuna-sweeper`` (1.2.0, its last release) pins
``optuna<3``, and with it ``SQLAlchemy<2`` (Optuna 2 does not run on SQLAlchemy 2), and is
unmaintained for Optuna 3+ (it builds on the distributions Optuna 3 deprecated and has no
pruning). nerlit's own uses Optuna's ask/tell API on Optuna >= 4 and keeps the old interface, so
lightning-hydra-template configs carry over (``direction``, ``study_name``, ``storage``,
``n_trials``, ``n_jobs``, ``sampler`` and ``params`` in Hydra's override grammar:
``tag(log, interval(1e-5, 2e-4))``, ``choice(16, 32, 64)``, ``range(1, 9, 2)``), and adds:

- ``pruner`` (a ``_target_`` config, default MedianPruner): with ``hparams_search=optuna`` each
  job reports ``val/f1`` after every validation and stops early when the pruner says so
  (``nerlit.experiments.pruning.OptunaPruning``, which loads the trial from ``storage``);
- a resumable study: ``storage`` defaults to ``sqlite:///<sweep dir>/optuna.db``, so rerunning
  with ``hydra.sweep.dir=<that sweep dir>`` continues it. Only the missing trials run (completed
  and pruned trials count toward ``n_trials``; trials an interrupted run left RUNNING are marked
  FAIL and their parameters run again), and job numbers continue after the existing jobs;
- a job that fails is a FAIL trial and the search goes on (a job that raises
  ``optuna.TrialPruned`` is a PRUNED one), and ``tag(int, interval(1, 8))`` searches integers.

Hydra imports every module of ``hydra_plugins`` at startup, for every nerlit command; this one
therefore imports neither Optuna nor nerlit's training code. ``_impl`` (skipped by Hydra's scan)
does, once a search starts.
"""

# no `from __future__ import annotations`: Hydra's scan runs this module without registering it
# in sys.modules, where dataclasses look string annotations up
import importlib
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

#: the one line a search prints when Optuna is not installed
MISSING_OPTUNA = 'hparams_search=optuna needs the optuna extra: pip install "nerlit[optuna]"'


@dataclass
class OptunaSweeperConf:
    """``hydra.sweeper`` under ``hydra/sweeper=optuna``; conf/hparams_search/optuna.yaml sets it."""

    _target_: str = "hydra_plugins.nerlit_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    # sampler and pruner stay configs until the sweeper has checked that Optuna is installed
    _recursive_: bool = False
    direction: str = "maximize"
    study_name: str | None = "nerlit"
    # RDB URL (or null: in memory, no pruning, no resume); the sweep folder is created first
    storage: str | None = "sqlite:///${hydra.sweep.dir}/optuna.db"
    n_trials: int = 20
    # trials launched together (a parallel launcher runs them at once)
    n_jobs: int = 1
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler"})
    pruner: Any = field(
        default_factory=lambda: {
            "_target_": "optuna.pruners.MedianPruner",
            "n_startup_trials": 5,
            "n_warmup_steps": 1,
        }
    )
    params: dict[str, str] | None = None
    # the config key each job gets its trial number in (``key=N``); null passes none
    trial_key: str | None = "optuna_trial"


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="nerlit"
)


def require_optuna() -> None:
    """Stop with the install command, not a traceback, when the optuna extra is missing."""
    try:
        optuna = importlib.import_module("optuna")
    except ImportError:
        raise SystemExit(MISSING_OPTUNA) from None
    major = int(str(optuna.__version__).split(".")[0])
    if major < 4:
        raise SystemExit(f"{MISSING_OPTUNA} (found optuna {optuna.__version__}, needs >= 4)")


class OptunaSweeper(Sweeper):
    """What Hydra instantiates; the search is ``_impl.OptunaSearch``, built once Optuna imports."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.search: Any = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        require_optuna()
        from ._impl import OptunaSearch

        self.search = OptunaSearch(**self.options)
        self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.search.sweep(arguments)

"""The Optuna search behind ``hydra/sweeper=optuna``: ask, launch through Hydra, tell.

Imported only once a search starts (Hydra's plugin scan skips ``_`` modules), so Optuna is
imported here at the top. See ``optuna_sweeper`` for why nerlit has its own sweeper.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from . import PRUNED_ATTR

log = logging.getLogger(__name__)

#: trial user attribute: the Hydra job number that ran the trial (job numbers continue from it)
JOB_ATTR = "job"
#: trial user attribute: the job's folder
JOB_DIR_ATTR = "job_dir"
#: trial user attribute: the interrupted trial whose parameters this one runs again
RETRY_ATTR = "retry_of"
_PRIMITIVE = (str, int, float, bool, type(None))
_ABSENT = object()
_PRUNED = object()


class SearchSpace:
    """Hydra overrides split into Optuna distributions and overrides passed to every job as is.

    Each value a trial draws is turned back into an override string by the same rules Hydra's
    basic sweeper uses, so a choice of strings with spaces or commas survives the round trip.
    """

    def __init__(self, overrides: Sequence[str]) -> None:
        self.distributions: dict[str, BaseDistribution] = {}
        self.fixed: dict[str, str] = {}
        # params whose categorical choices are already override strings (lists, dicts)
        self._verbatim: set[str] = set()
        for override in OverridesParser.create().parse_overrides(list(overrides)):
            key = override.get_key_element()
            # a later override of the same key (the command line after `params`) wins
            self.distributions.pop(key, None)
            self.fixed.pop(key, None)
            if override.is_sweep_override():
                self.distributions[key] = self._distribution(key, override)
            else:
                self.fixed[key] = override.input_line

    def _distribution(self, key: str, override: Override) -> BaseDistribution:
        value = override.value()
        if isinstance(value, IntervalSweep):
            assert value.start is not None and value.end is not None
            log_scale = "log" in value.tags
            if "int" in value.tags:
                return IntDistribution(int(value.start), int(value.end), log=log_scale)
            return FloatDistribution(float(value.start), float(value.end), log=log_scale)
        items = list(override.sweep_iterator(transformer=Transformer.identity))
        if isinstance(value, RangeSweep) and not value.shuffle:
            # Hydra's range excludes stop, as Python's; Optuna's high is included
            assert value.step is not None and items, f"{override.input_line}: an empty range"
            low, high, step = min(items), max(items), abs(value.step)
            if all(isinstance(x, int) for x in (low, high, step)):
                return IntDistribution(low, high, step=step)
            return FloatDistribution(float(low), float(high), step=float(step))
        assert isinstance(value, (ChoiceSweep, RangeSweep))
        if all(isinstance(x, _PRIMITIVE) for x in items):
            return CategoricalDistribution(items)
        self._verbatim.add(key)
        return CategoricalDistribution([Transformer.str(x) for x in items])

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """One job's overrides: the fixed ones, then the trial's values."""
        drawn = [
            f"{key}={value if key in self._verbatim else Transformer.str(value)}"
            for key, value in params.items()
        ]
        return [*self.fixed.values(), *drawn]


def recover_interrupted_trials(study: optuna.Study) -> list[int]:
    """Mark trials a killed run left RUNNING as FAIL and enqueue their parameters again.

    Assumes no other sweep works on the study at the same time (its running trials would be
    taken for dead ones). Returns the recovered trial numbers.
    """
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(dict(trial.params), user_attrs={RETRY_ATTR: trial.number})
        recovered.append(trial.number)
    return recovered


def next_job_number(study: optuna.Study, sweep_dir: Path) -> int:
    """After every job of the study and every numbered job folder, so none is overwritten."""
    numbers = [t.user_attrs.get(JOB_ATTR, -1) for t in study.get_trials(deepcopy=False)]
    if sweep_dir.is_dir():
        numbers += [int(p.name) for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(numbers, default=-1) + 1


def write_results(study: optuna.Study, path: Path) -> None:
    """``optimization_results.yaml`` as hydra-optuna-sweeper wrote it, plus where the best is."""
    trials = study.get_trials(deepcopy=False)
    results: dict[str, Any] = {
        "name": "optuna",
        "study_name": study.study_name,
        "direction": study.direction.name.lower(),
        "trials": dict(Counter(t.state.name.lower() for t in trials)),
        "best_trial": None,
        "best_job_dir": None,
        "best_params": None,
        "best_value": None,
    }
    if any(t.state == TrialState.COMPLETE for t in trials):
        best = study.best_trial
        results.update(
            best_trial=best.number,
            best_job_dir=best.user_attrs.get(JOB_DIR_ATTR),
            best_params=dict(best.params),
            best_value=best.value,
        )
    path.write_text(yaml.safe_dump(results, sort_keys=False))


class OptunaSearch(Sweeper):
    """Asks Optuna for ``n_jobs`` trials at a time, launches them as Hydra jobs, tells results.

    A job's return value (nerlit.train returns the best val F1) is the trial's value. A job that
    raised is a FAIL, except ``optuna.TrialPruned`` and jobs whose trial the pruning callback
    marked: those are PRUNED. The search goes on after a failed job, whatever failed it: in a
    sweep job nerlit's one-line user errors (data, config, environment) are raised as exceptions,
    not ``SystemExit`` (``nerlit.commands.cli.exit_on_user_error``), so they are FAIL trials
    too, their
    line in sweep.md. A launcher that ends the process still ends the search, with the batch's
    trials told FAIL; Ctrl-C ends it with the running trials queued again for a resumed search.
    """

    def __init__(
        self,
        direction: str,
        study_name: str | None,
        storage: str | None,
        n_trials: int,
        n_jobs: int,
        sampler: DictConfig | None,
        pruner: DictConfig | None,
        params: DictConfig | None,
        trial_key: str | None,
    ) -> None:
        self.direction = str(direction).lower()
        self.study_name = study_name
        self.storage = storage
        self.n_trials = int(n_trials)
        self.n_jobs = max(1, int(n_jobs))
        self.sampler = sampler
        self.pruner = pruner
        self.params = dict(params or {})
        self.trial_key = trial_key
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None
        self.sweep_dir = Path()
        self.exhausted = False

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir))

    def _make_sampler(self, n_existing: int) -> optuna.samplers.BaseSampler:
        if not self.sampler:
            return optuna.samplers.TPESampler()
        seed = self.sampler.get("seed")
        if n_existing and isinstance(seed, int):
            # a resumed search with the first run's seed would draw the first run's trials again
            return instantiate(self.sampler, seed=seed + n_existing)
        return instantiate(self.sampler)

    def _open_study(self) -> optuna.Study:
        if self.storage and self.storage.startswith("sqlite:///"):
            Path(self.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        pruner = instantiate(self.pruner) if self.pruner else optuna.pruners.NopPruner()
        study = optuna.create_study(
            storage=self.storage,
            study_name=self.study_name,
            direction=self.direction,
            pruner=pruner,
            load_if_exists=True,
        )
        if study.direction.name.lower() != self.direction:
            raise SystemExit(
                f"nerlit: study {study.study_name!r} in {self.storage} is set to "
                f"{study.direction.name.lower()}, not {self.direction}: choose another "
                "hydra.sweeper.study_name or storage"
            )
        study.sampler = self._make_sampler(len(study.get_trials(deepcopy=False)))
        return study

    def _job_overrides(self, space: SearchSpace, trial: optuna.trial.Trial) -> list[str]:
        overrides = space.overrides(trial.params)
        if self.trial_key:
            assert self.config is not None
            absent = OmegaConf.select(self.config, self.trial_key, default=_ABSENT) is _ABSENT
            overrides.append(f"{'+' if absent else ''}{self.trial_key}={trial.number}")
        return overrides

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        assert self.config is not None and self.launcher is not None
        space = SearchSpace([*(f"{k}={v}" for k, v in self.params.items()), *arguments])
        if not space.distributions:
            log.warning("hydra.sweeper.params has nothing to search: every trial is the same")
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")
        study = self._open_study()
        recovered = recover_interrupted_trials(study)
        if recovered:
            log.warning(
                "trials %s were left running by an interrupted search: marked FAIL, "
                "their parameters run again",
                recovered,
            )
        finished = _finished(study)
        to_go = max(self.n_trials - finished, 0)
        log.info(
            "study %r in %s: %d of %d trials finished, %d to run (sampler %s, pruner %s)",
            study.study_name,
            self.storage or "memory",
            finished,
            self.n_trials,
            to_go,
            type(study.sampler).__name__,
            type(study.pruner).__name__,
        )
        job = next_job_number(study, self.sweep_dir)
        returns: list[Sequence[JobReturn]] = []
        while to_go > 0 and not self.exhausted:
            trials = [study.ask(space.distributions) for _ in range(min(self.n_jobs, to_go))]
            batch = []
            for offset, trial in enumerate(trials):
                trial.set_user_attr(JOB_ATTR, job + offset)
                batch.append(self._job_overrides(space, trial))
            try:
                # composition errors (a misspelled key) stop the search before any job runs
                self.validate_batch_is_legal(batch)
                results = self.launcher.launch(batch, initial_job_idx=job)
            except BaseException as stop:
                retry = isinstance(stop, KeyboardInterrupt)
                for trial in trials:
                    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                    if retry:
                        study.enqueue_trial(
                            dict(trial.params), user_attrs={RETRY_ATTR: trial.number}
                        )
                raise
            job += len(batch)
            to_go -= len(batch)
            returns.append(results)
            self._tell(study, trials, results)
            write_results(study, self.sweep_dir / "optimization_results.yaml")
        write_results(study, self.sweep_dir / "optimization_results.yaml")
        self._log_best(study)
        return returns

    def _tell(
        self, study: optuna.Study, trials: list[optuna.trial.Trial], results: Sequence[JobReturn]
    ) -> None:
        # the jobs wrote to the storage through their own connections: read the trials afresh
        running = {t.number: t for t in study.get_trials(states=(TrialState.RUNNING,))}
        for trial, result in zip(trials, results):
            if result.hydra_cfg is not None:
                trial.set_user_attr(JOB_DIR_ATTR, str(result.hydra_cfg.hydra.runtime.output_dir))
            job = trial.user_attrs.get(JOB_ATTR)
            stored: FrozenTrial | None = running.get(trial.number)
            try:
                value = result.return_value
            except optuna.TrialPruned:
                value = _PRUNED
            except Exception as error:
                log.warning("trial %d (job %s) failed: %r", trial.number, job, error)
                self._record(study, trial, state=TrialState.FAIL)
                continue
            if value is _PRUNED or (stored is not None and PRUNED_ATTR in stored.user_attrs):
                self._record(study, trial, state=TrialState.PRUNED)
                log.info("trial %d (job %s) pruned", trial.number, job)
            elif not isinstance(value, (int, float)):
                log.warning(
                    "trial %d (job %s) returned %r, not a score: FAIL", trial.number, job, value
                )
                self._record(study, trial, state=TrialState.FAIL)
            else:
                self._record(study, trial, values=float(value))
                log.info("trial %d (job %s): %s", trial.number, job, value)

    def _record(self, study: optuna.Study, trial: optuna.trial.Trial, **result: Any) -> None:
        try:
            study.tell(trial, **result)
        except RuntimeError as error:
            # GridSampler and BruteForceSampler call study.stop() once every combination has run,
            # which Optuna allows only inside study.optimize; the trial is recorded all the same
            if "Study.stop" not in str(error):
                raise
            log.info("the sampler has tried every combination: the search ends")
            self.exhausted = True

    def _log_best(self, study: optuna.Study) -> None:
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if self.n_trials > 0 and not _finished(study):
                raise SystemExit(
                    f"nerlit: no trial of study {study.study_name!r} finished; "
                    f"the job logs under {self.sweep_dir} say why"
                )
            log.warning("no trial of study %r completed (all pruned or failed)", study.study_name)
            return
        best = study.best_trial
        params = " ".join(f"{k}={v}" for k, v in best.params.items())
        log.info(
            "best trial %d (%s): %s with %s",
            best.number,
            best.user_attrs.get(JOB_DIR_ATTR),
            best.value,
            params,
        )


def _finished(study: optuna.Study) -> int:
    """Trials that count toward n_trials: completed and pruned ones."""
    states = (TrialState.COMPLETE, TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))

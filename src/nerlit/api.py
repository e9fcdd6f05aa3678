"""The Python API: ``nerlit.fit`` and ``nerlit.evaluate`` for notebooks and scripts.

They do what ``nerlit train`` and ``nerlit evaluate`` do, through the same steps: the same
config composition (nerlit's configs, your own config folder beside them, overrides as on the
command line), the same checks, the same run folder under ``./outputs/`` and the same files.
What differs is how a run ends: a result object instead of a printed block, and a wrong input
raises the one-line :class:`~nerlit.errors.NerlitError` instead of exiting the interpreter.

Hydra's compose API is what this is built on (the way Hydra documents calling an app from a
notebook); the run directory is made as Hydra's ``@hydra.main`` makes it, from the same
``hydra.run.dir`` pattern, so ``${hydra:runtime.output_dir}`` means the same here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nerlit.commands.cli import override_value, remove_untouched_run_dir
from nerlit.errors import ConfigError, NerlitError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from nerlit.inference.tagger import Tagger

Overrides = Sequence[str] | Mapping[str, Any] | None


@dataclass(frozen=True)
class Run:
    """A finished training run: its folder, its scores and its checkpoints."""

    #: the run folder (``outputs/train/runs/<time>``): config, checkpoints, metrics, logs
    dir: Path
    #: what ``nerlit train`` prints at the end (``best_val_f1``, ``test_f1``, throughput, ...)
    metrics: dict
    #: the checkpoint with the best dev F1 (weights only); None when the run did not train
    best_checkpoint: Path | None
    #: the test split's scores as ``metrics.json`` holds them (per type, micro/macro, ...)
    test_scores: dict = field(default_factory=dict)

    def tagger(self, **options: Any) -> Tagger:
        """The run's best model (else its last checkpoint), loaded for tagging text."""
        from nerlit.inference.tagger import Tagger

        checkpoint = self.best_checkpoint or self.dir / "checkpoints" / "last.ckpt"
        return Tagger.load(checkpoint, **options)


def fit(overrides: Overrides = None, config_dir: str | Path | None = None) -> Run:
    """Train exactly as ``nerlit train <overrides>`` does and return the run.

    ``overrides``: ``["model=minilm", "trainer.max_epochs=3"]`` or
    ``{"model": "minilm", "trainer.max_epochs": 3}``. ``config_dir``: a folder of your own
    config groups, searched beside nerlit's (the CLI's ``--config-dir``).
    """
    from hydra_plugins.nerlit_optuna_sweeper import register_with_hydra
    from nerlit import extras
    from nerlit.commands.train import train

    arguments = as_overrides(overrides)
    extras.require_for_overrides(arguments)
    register_with_hydra()
    cfg = _compose("train", arguments, config_dir)
    with _run_log(Path(cfg.paths.output_dir), "train"):
        summary = train(cfg)
    run_dir = Path(summary["run_dir"])
    scores_file = run_dir / "metrics.json"
    best = summary.get("best_checkpoint")
    return Run(
        dir=run_dir,
        metrics=summary,
        best_checkpoint=Path(best) if best else None,
        test_scores=json.loads(scores_file.read_text()) if scores_file.is_file() else {},
    )


def evaluate(
    ckpt_path: str | Path, overrides: Overrides = None, config_dir: str | Path | None = None
) -> dict:
    """Score a checkpoint or exported model as ``nerlit evaluate`` does; returns its scores
    (the run's test split unless the overrides name another split or file)."""
    from nerlit.commands.evaluate import evaluate as evaluate_split

    arguments = [f"ckpt_path={override_value(str(ckpt_path))}", *as_overrides(overrides)]
    cfg = _compose("evaluate", arguments, config_dir)
    with _run_log(Path(cfg.paths.output_dir), "evaluate"):
        return evaluate_split(cfg)


def as_overrides(overrides: Overrides) -> list[str]:
    """Hydra override strings from a list of them or a ``{key: value}`` mapping."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        raise ConfigError(
            f"overrides={overrides!r}: give a list of strings (['{overrides}']) or a dict"
        )
    if isinstance(overrides, Mapping):
        return [f"{key}={override_value(value)}" for key, value in overrides.items()]
    return [str(item) for item in overrides]


def _compose(verb: str, overrides: list[str], config_dir: str | Path | None) -> DictConfig:
    """The verb's config as ``nerlit <verb>`` composes it, with its run directory made."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict

    from nerlit.commands.cli import suggest_keys
    from nerlit.config import CONFIG_DIR

    arguments = list(overrides)
    if config_dir is not None:
        folder = Path(config_dir).expanduser().resolve()
        if not folder.is_dir():
            raise ConfigError(f"config_dir={config_dir}: no such folder")
        arguments.append(f"hydra.searchpath=[file://{folder}]")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(f"{verb}.yaml", overrides=arguments, return_hydra_config=True)
    except HydraException as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        hint = suggest_keys(verb, overrides)
        raise ConfigError("; ".join(lines[:2] + hint)) from None
    finally:
        GlobalHydra.instance().clear()
    run_dir = Path(str(cfg.hydra.run.dir)).expanduser().resolve()
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.name = verb
    HydraConfig.instance().set_config(cfg)  # ${hydra:...} resolves, as in the CLI
    run_cfg = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    with open_dict(run_cfg):
        run_cfg.paths.output_dir = str(run_dir)
    return run_cfg


@contextmanager
def _run_log(run_dir: Path, name: str) -> Iterator[None]:
    """nerlit's log lines in ``<run>/<verb>.log``, as the CLI writes them; the caller's own
    logging setup is left as it is."""
    logger = logging.getLogger("nerlit")
    previous = logger.level
    handler: logging.Handler | None = None
    made = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(run_dir / f"{name}.log", encoding="utf-8")
    except OSError:
        pass  # the verb checks its directory itself and says what is wrong in one line
    if handler is not None:
        handler.setFormatter(
            logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
        )
        logger.addHandler(handler)
    if previous == logging.NOTSET or previous > logging.INFO:
        logger.setLevel(logging.INFO)
    refused = False
    try:
        yield
    except NerlitError:
        refused = True
        raise
    finally:
        logger.setLevel(previous)
        if handler is not None:
            logger.removeHandler(handler)
            handler.close()
        if refused and made:  # refused before it wrote anything: no empty folder (as the CLI)
            remove_untouched_run_dir(run_dir, name)

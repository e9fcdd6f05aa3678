"""``python -m nerlit.train``: compose config -> resolve model -> data -> fit -> test -> report."""

from __future__ import annotations

import json
import logging
import sys
import time
from functools import partial
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import (
    LearningRateMonitor,
    ProgressBar,
    RichProgressBar,
    TQDMProgressBar,
)
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from hydra_plugins.nerlit_optuna_sweeper import register_with_hydra
from nerlit import extras
from nerlit.callbacks.finite_loss import StopOnNonFiniteLoss
from nerlit.callbacks.max_steps import ValidateBeforeMaxSteps
from nerlit.callbacks.throughput import TokenThroughput
from nerlit.commands.cli import exit_on_user_error
from nerlit.config import CONFIG_DIR
from nerlit.config_checks import validate
from nerlit.errors import ConfigError, DataError
from nerlit.evaluation.curves import write_run_curves
from nerlit.evaluation.metrics import entity_scores
from nerlit.evaluation.report import write_evaluation
from nerlit.experiments.ddp import distributed_job, is_global_zero
from nerlit.experiments.provenance import write_provenance
from nerlit.experiments.rerun import SAVED_CONFIG, rerun_config
from nerlit.experiments.resume import continue_csv_history, resolve_checkpoint
from nerlit.experiments.run_dir import ensure_writable_dir, warn_if_reused
from nerlit.experiments.wandb_mode import configure_wandb_mode
from nerlit.experiments.wandb_run import finish_wandb, log_config, log_test_results, prepare_wandb
from nerlit.models.module import NerModule
from nerlit.models.pretrained import load_tokenizer, resolve_pretrained

log = logging.getLogger(__name__)


class _LightningNoise(logging.Filter):
    """Lightning's info lines that describe nerlit's own settings back to the user, not a
    problem: the ``limit_*_batches=1.0`` it is passed (nerlit's configs spell out Lightning's
    defaults so that every key takes an override), the model summary nerlit configures itself,
    and the advertisement for Lightning's cloud logger. Warnings pass untouched."""

    NOISE = ("` was configured so ", "Trainer already configured with model summary", "💡 Tip:")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return not any(text in record.getMessage() for text in self.NOISE)


def quiet_lightning() -> None:
    """Install :class:`_LightningNoise` once, on the logger of Lightning's rank-zero messages,
    and leave out two warnings that Lightning gives about itself, not about the run: its model
    summary's size estimate under bf16 (nerlit's summary shows parameter counts) and a deprecated
    torch call inside Lightning (``LeafSpec``)."""
    import warnings

    warnings.filterwarnings("ignore", message=r"Precision .* is not supported by the model summary")
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _LightningNoise) for f in logger.filters):
        logger.addFilter(_LightningNoise())


def _instantiate_group(group: DictConfig | None) -> list:
    """Callbacks and loggers are dicts of named configs (so overlays can add or drop one)."""
    configs = [c for c in (group or {}).values() if c is not None and "_target_" in c]
    for config in configs:
        if config._target_ in extras.TARGETS:
            extras.require(extras.TARGETS[config._target_])
    return [instantiate(c) for c in configs]


def build(cfg: DictConfig) -> tuple[NerModule, L.LightningDataModule, L.Trainer]:
    """Everything ``fit`` needs, built from the config alone; tests call this directly."""
    quiet_lightning()
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    resolved = resolve_pretrained(cfg.model.name, cfg.model.pretrained, cfg.paths.models_dir)
    log.info("model %s -> %s", cfg.model.name, resolved.location)
    tokenizer = load_tokenizer(resolved.location)
    tokenizer.save_pretrained(out / "tokenizer")
    datamodule = instantiate(cfg.data, tokenizer=tokenizer, output_dir=str(out))
    datamodule.setup("fit")
    _require_entities(cfg, datamodule)
    reference_types = list(cfg.data.get("reference_types") or [])
    module = instantiate(
        cfg.model,
        _convert_="all",
        labels=datamodule.labels,
        pretrained=resolved.location,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        scorer=partial(entity_scores, mode=cfg.eval_mode, reference_types=reference_types),
        eval_mode=cfg.eval_mode,
        reference_types=reference_types,
        tokenizer_dir=str(out / "tokenizer"),
        context=cfg.data.get("context", 0),
        max_length=cfg.data.get("max_length"),
        stride=cfg.data.get("stride", 64),
        data_record=datamodule.data_record(),
    )
    if "wandb" in (cfg.get("logger") or {}):
        configure_wandb_mode()
    callbacks = _instantiate_group(cfg.get("callbacks"))
    loggers = _instantiate_group(cfg.get("logger"))
    if not loggers:
        # Lightning's LearningRateMonitor refuses to start without a logger; logger=none wins
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if not cfg.trainer.get("enable_progress_bar", True):
        # Lightning refuses a progress-bar callback when bars are off; the switch wins
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    elif not sys.stdout.isatty():
        # a rich live display prints nothing into a file (nohup, SLURM logs); tqdm's lines do
        callbacks = [
            TQDMProgressBar(refresh_rate=50) if isinstance(c, RichProgressBar) else c
            for c in callbacks
        ]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return module, datamodule, trainer


def _require_entities(cfg: DictConfig, datamodule: L.LightningDataModule) -> None:
    """Stop on a train split whose every tag is O: its labels are ["O"] alone, which transformers
    refused as a one-label head ("requires num_labels > 1"), saying nothing of the data."""
    if len(datamodule.labels) > 1:
        return
    column = cfg.data.get("tag_column")
    fix = "give a train file with entity tags"
    if cfg.data.get("format") == "conll" and column is not None:
        fix = f"check that data.tag_column={column} is the column of entity tags, or {fix}"
    raise DataError(
        f"{cfg.data.train_file}: train has no entities (every tag is O in its "
        f"{len(datamodule.sentences('train'))} sentences): nothing to learn; {fix}"
    )


def _val_check_problem(trainer: L.Trainer) -> str | None:
    """Lightning's ValueError for an integer ``val_check_interval`` longer than an epoch, in one
    line naming the key, the epoch's batch count and the fix; None for any other error.

    Lightning checks it where fit sets up its data, on the epoch's batch count it has just
    computed (after ``limit_train_batches``, per rank); the same condition is tested here on
    those values, so its message text is not relied on.
    """
    interval, batches = trainer.val_check_interval, trainer.fit_loop.max_batches
    if not (
        isinstance(interval, int)
        and trainer.check_val_every_n_epoch is not None
        and trainer.limit_val_batches > 0
        and interval > batches
    ):
        return None
    limit = trainer.limit_train_batches
    limited = "" if limit == 1.0 else f" (trainer.limit_train_batches={limit})"
    return (
        f"trainer.val_check_interval={interval}: an epoch has {batches} training batches"
        f"{limited}, so it would never validate; set trainer.val_check_interval to at most "
        f"{batches}, or to a fraction of an epoch (0.25: four times an epoch), or set "
        f"trainer.check_val_every_n_epoch=null to count {interval} batches across epochs"
    )


def _partial(module: NerModule, split: str, limit: float | int) -> str | None:
    """How a split scored in part (``trainer.limit_<split>_batches``) is labelled in the summary."""
    scored, total = module.scored.get(split, (0, 0))
    if scored >= total:
        return None
    return f"{scored} of {total} sentences scored (trainer.limit_{split}_batches={limit})"


def _best_val_f1(trainer: L.Trainer, best: str) -> float | None:
    """The checkpointed best; without checkpointing, the module's running best (for sweepers)."""
    callback = trainer.checkpoint_callback
    if best and callback is not None and callback.best_model_score is not None:
        return float(callback.best_model_score)
    value = trainer.callback_metrics.get("val/f1_best")
    return float(value) if value is not None else None


def _print_summary(summary: dict) -> None:
    """One block at the end of a run: where it is, what it scored."""
    first = ("run_dir", "best_checkpoint", "best_val_f1", "val_partial", "test_f1", "test_partial")
    keys = [k for k in first if k in summary] + [k for k in summary if k not in first]
    lines = []
    for key in keys:
        value = summary[key]
        shown = f"{value:.4f}" if isinstance(value, float) and key.endswith("f1") else value
        lines.append(f"  {key}: {shown}")
    # soft_wrap: a long path stays on one line when stdout is a file or a pipe (copy-paste)
    Console(soft_wrap=True).print("[bold]Run finished[/bold]\n" + "\n".join(lines))


def _fit_and_test(
    cfg: DictConfig,
    module: NerModule,
    datamodule: L.LightningDataModule,
    trainer: L.Trainer,
    ckpt_path: str | None,
    out: Path,
) -> dict:
    if cfg.train:
        if ckpt_path:
            continue_csv_history(trainer, ckpt_path)
        trainer.callbacks.append(ValidateBeforeMaxSteps())
        # first: a NaN found at an epoch's end stops the run before the checkpoint callbacks save
        trainer.callbacks.insert(0, StopOnNonFiniteLoss())
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        except ValueError:
            problem = _val_check_problem(trainer)
            if problem is None:
                raise
            raise ConfigError(problem) from None
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    summary = {
        "run_dir": str(out),
        "best_checkpoint": best or None,
        "best_val_f1": _best_val_f1(trainer, best) if cfg.train else None,
        "world_size": trainer.world_size,
    }
    if cfg.train and (coverage := _partial(module, "val", trainer.limit_val_batches)):
        summary["val_partial"] = coverage
    if ckpt_path:
        summary["resumed_from" if cfg.train else "evaluated_checkpoint"] = ckpt_path
    throughput = next((c for c in trainer.callbacks if isinstance(c, TokenThroughput)), None)
    if throughput and throughput.seconds:
        summary["train_tokens_per_s"] = round(throughput.tokens_per_s, 1)
        summary["train_words_per_s"] = round(throughput.words_per_s, 1)
        summary["train_seconds"] = round(throughput.seconds, 1)
        summary["startup_seconds"] = round(throughput.startup_seconds or 0.0, 1)
    if cfg.test:
        # without training, ckpt_path names the checkpoint to test
        tested = best or (ckpt_path if not cfg.train else None)
        trainer.test(
            module, datamodule=datamodule, ckpt_path=tested, weights_only=True, verbose=False
        )  # nerlit prints its own table; Lightning's "Test metric" one would repeat it
        summary["test_f1"] = module.test_scores["micro"]["f1"]
        if coverage := _partial(module, "test", trainer.limit_test_batches):
            summary["test_partial"] = coverage
        if "reference" in module.test_scores:
            summary["test_f1_reference_types"] = module.test_scores["reference"]["f1"]
        if trainer.is_global_zero:
            write_evaluation(
                module.test_scores,
                module.test_gold,
                module.test_predictions,
                out,
                f"{datamodule.corpus.name} test, {cfg.model.get('decode', 'argmax')} decoding",
                datamodule.sentences("test"),
                cfg.eval_mode,
                OmegaConf.to_container(cfg.bootstrap) if cfg.get("bootstrap") else None,
            )
            log_test_results(
                trainer,
                module.test_scores,
                getattr(module, "test_gold", []),
                module.test_predictions,
                out,
                summary,
                sentences=datamodule.sentences("test"),
                best_checkpoint=best or None,
            )
    return summary


def _task_overrides() -> list[str]:
    """This command's key=value overrides (Hydra's record of them), for ``rerun=``."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def train(cfg: DictConfig) -> dict:
    """Fit (or resume), test the best checkpoint, write the run's files; return the summary.

    Under DDP every rank runs this function; only rank 0 writes files, logs and prints.
    The config is checked first, whole (:mod:`nerlit.config_checks`): a wrong value stops the run
    before a file is read or written.
    """
    if cfg.get("rerun"):
        cfg = rerun_config(cfg, _task_overrides())
    validate(cfg, "train")
    started = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    out = Path(cfg.paths.output_dir)
    ckpt_path = resolve_checkpoint(cfg.get("ckpt_path"), out, resuming=bool(cfg.train))
    zero = is_global_zero()
    if zero:
        ensure_writable_dir(out, "paths.output_dir")
        warn_if_reused(out, resuming=bool(ckpt_path))
    uses_wandb = "wandb" in (cfg.get("logger") or {})
    if uses_wandb:
        prepare_wandb(cfg, out, resuming=bool(ckpt_path and cfg.train), write=zero)
    if zero:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        # what a rerun of this run reads: the config as run, interpolations kept
        (out / SAVED_CONFIG).parent.mkdir(exist_ok=True)
        (out / SAVED_CONFIG).write_text(OmegaConf.to_yaml(cfg))
        write_provenance(out)
    try:
        with distributed_job() as trainers:
            module, datamodule, trainer = build(cfg)
            trainers.append(trainer)
            if uses_wandb:
                log_config(trainer, cfg)
            summary = _fit_and_test(cfg, module, datamodule, trainer, ckpt_path, out)
    except BaseException:
        finish_wandb(failed=True)
        raise
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    finish_wandb(failed=False)
    if zero:
        if cfg.train:
            write_run_curves(out)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        _print_summary(summary)
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train.yaml")
@exit_on_user_error
def _main(cfg: DictConfig) -> float | None:
    """Returns the best validation F1, so a Hydra sweeper (hparams_search=optuna) maximises it."""
    return train(cfg).get("best_val_f1")


def main() -> None:
    """``nerlit train`` / ``python -m nerlit.train``: a chosen feature's extra is checked first."""
    exit_on_user_error(extras.require_for_overrides)(sys.argv[1:])
    register_with_hydra()  # hparams_search=optuna's sweeper, which editable installs hide
    _main()


if __name__ == "__main__":
    from nerlit.commands.cli import main as nerlit  # its "did you mean" for mistyped keys

    nerlit(["train", *sys.argv[1:]])

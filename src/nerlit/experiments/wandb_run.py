"""W&B for many runs: one W&B run per nerlit run, resumable, grouped by sweep, always finished.

Lightning's ``WandbLogger`` reuses a ``wandb.run`` that is still open, so without a finish at the
end of each job every Hydra multirun job after the first logs into the first job's run (wandb
#1314, lightning-hydra-template #289); it draws a new run id on every launch, so a resumed
training would start a second W&B run (lightning-hydra-template #128); and online mode with no
network blocks, then crashes. Here each run directory keeps its W&B id (``wandb_id.txt``), jobs
of a sweep are grouped by the sweep's folder, W&B runs offline unless configured
(:func:`nerlit.experiments.wandb_mode.configure_wandb_mode`), and :func:`finish_wandb` closes the
run with the job's outcome.
"""

from __future__ import annotations

import logging
import random
import secrets
import string
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
from omegaconf import DictConfig, OmegaConf, open_dict

from nerlit.experiments.wandb_mode import configure_wandb_mode

if TYPE_CHECKING:
    from nerlit.data.types import Sentence

log = logging.getLogger(__name__)

ID_FILE = "wandb_id.txt"
#: test sentences shown in the ``test/predictions`` table
PREDICTION_SAMPLE = 100
PREDICTION_COLUMNS = ["sentence", "words", "gold", "predicted", "correct"]


def _hydra_job() -> tuple[str, int] | None:
    """(sweep folder name, job number) inside a Hydra multirun job, else None."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
    except ImportError:  # pragma: no cover - hydra is a dependency
        return None
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return Path(hydra_cfg.sweep.dir).name, int(hydra_cfg.job.num)


def new_run_id() -> str:
    """A W&B run id (8 lowercase letters and digits, as W&B draws them; its helper is private)."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def prepare_wandb(cfg: DictConfig, run_dir: Path, resuming: bool, write: bool = True) -> str:
    """Fill in the W&B logger's id, resume policy, group and name before it is built.

    A resumed run reuses the id saved in its run directory, so W&B continues the same run.
    Returns the id.
    """
    configure_wandb_mode()
    node = cfg.logger.wandb
    id_file = run_dir / ID_FILE
    with open_dict(node):
        if not node.get("id"):
            saved = id_file.read_text().strip() if resuming and id_file.is_file() else ""
            node.id = saved or new_run_id()
        node.resume = node.get("resume") or "allow"
        job = _hydra_job()
        if job is not None:
            sweep, num = job
            node.group = node.get("group") or sweep
            node.name = node.get("name") or f"{sweep}/{num}"
        else:
            node.name = node.get("name") or run_dir.name
    if write:
        run_dir.mkdir(parents=True, exist_ok=True)
        id_file.write_text(node.id)
    return node.id


def wandb_loggers(trainer: L.Trainer) -> list:
    from lightning.pytorch.loggers import WandbLogger

    return [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]


def log_config(trainer: L.Trainer, cfg: DictConfig) -> None:
    """The composed config (Lightning alone logs only the module's hyperparameters).

    Logged before ``fit`` so the W&B run exists, with its config, also when fit fails.
    """
    config = OmegaConf.to_container(cfg, resolve=True)
    for logger in wandb_loggers(trainer):
        logger.experiment.config.update(config, allow_val_change=True)


def prediction_rows(
    sentences: Sequence[Sentence],
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    mode: str = "strict",
    size: int = PREDICTION_SAMPLE,
    seed: int = 0,
) -> list[list[Any]]:
    """A seeded sample of test sentences: index, words, gold and predicted entities, correct.

    A random sample, not the errors: it shows what the model does on typical sentences (the
    error page, ``nerlit evaluate``, ranks errors). The seed keeps the same sentences in every
    run, so runs compare row by row in W&B. Entities are read as the scorer reads them
    (``mode``), and a sentence is correct when its predicted entities are exactly the gold ones.
    """
    from nerlit.evaluation.metrics import extract_entities

    chosen = sorted(random.Random(seed).sample(range(len(sentences)), min(size, len(sentences))))
    gold_entities = extract_entities([gold[i] for i in chosen], mode)
    pred_entities = extract_entities([pred[i] for i in chosen], mode)
    rows = []
    for k, index in enumerate(chosen):
        words = sentences[index].words
        wanted = sorted(e[1:] for e in gold_entities if e[0] == k)
        found = sorted(e[1:] for e in pred_entities if e[0] == k)
        rows.append(
            [
                index,
                " ".join(words),
                _entities_text(words, wanted),
                _entities_text(words, found),
                wanted == found,
            ]
        )
    return rows


def _entities_text(words: Sequence[str], entities: list[tuple[str, int, int]]) -> str:
    """``per: Angela Merkel; geo: Berlin``, in the order of the sentence."""
    ordered = sorted(entities, key=lambda e: (e[1], e[2]))
    return "; ".join(f"{kind}: {' '.join(words[start:end])}" for kind, start, end in ordered)


def log_best_checkpoint(logger: Any, path: str | Path, summary: dict) -> None:
    """The best checkpoint as a W&B ``model`` artifact (``model-<run id>``, alias ``best``).

    Logged by nerlit rather than by ``WandbLogger(log_model=True)``, which Lightning refuses
    offline (nerlit's default) and which would also upload ``last.ckpt``. Offline, W&B copies
    the file into its staging folder and records the artifact in the offline run folder;
    ``wandb sync`` uploads it. A resumed run (same W&B id) adds a version of the same artifact.
    """
    import wandb

    run = logger.experiment
    metadata = {k: v for k, v in summary.items() if v is not None and k.endswith("f1")}
    metadata["checkpoint"] = Path(path).name
    artifact = wandb.Artifact(f"model-{run.id}", type="model", metadata=metadata)
    artifact.add_file(str(path), name="best.ckpt")
    run.log_artifact(artifact, aliases=["best", "latest"])


def log_test_results(
    trainer: L.Trainer,
    scores: dict,
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    run_dir: Path,
    summary: dict,
    sentences: Sequence[Sentence] | None = None,
    best_checkpoint: str | Path | None = None,
) -> None:
    """Per-type test scores as a W&B table, the entity confusion matrix as an image, a sample of
    test predictions as a table (``test/predictions``), the best checkpoint as an artifact, the
    summary.

    The confusion matrix is the run directory's confusion.png, drawn with the test's other files
    (:func:`nerlit.evaluation.report.write_evaluation`): nothing is drawn here. The predictions
    table needs ``sentences`` that ``pred`` covers one for one: a run that scored part of the
    test split (``limit_test_batches``) cannot say which words a prediction is for.
    """
    loggers = wandb_loggers(trainer)
    if not loggers:
        return
    from nerlit.evaluation.bootstrap import interval_summary
    from nerlit.evaluation.report import report_rows

    columns = ["type", "precision", "recall", "f1", "support"]
    rows = [[name, *(row[k] for k in columns[1:])] for name, row in report_rows(scores)]
    image = run_dir / "confusion.png" if gold and (run_dir / "confusion.png").is_file() else None
    samples = None
    if sentences is not None and gold and len(sentences) == len(pred) == len(gold):
        samples = prediction_rows(sentences, gold, pred, scores.get("mode", "strict"))
    elif gold:
        log.info("W&B: part of the test split was scored; no test/predictions table")
    checkpoint = Path(best_checkpoint) if best_checkpoint else None
    for logger in loggers:
        logger.log_table("test/per_type", columns=columns, data=rows)
        if image is not None:
            logger.log_image("test/confusion", [str(image)])
        if samples is not None:
            logger.log_table("test/predictions", columns=PREDICTION_COLUMNS, data=samples)
        if checkpoint is not None and checkpoint.is_file():
            log_best_checkpoint(logger, checkpoint, summary)
        logger.experiment.summary.update(
            {f"final/{k}": v for k, v in summary.items() if v is not None}
        )
        # the 95% bootstrap intervals of the test F1s, beside them
        logger.experiment.summary.update(interval_summary(scores))


def finish_wandb(failed: bool) -> None:
    """Close this job's W&B run, marked failed (exit code 1) when the job failed.

    A no-op when no run is open, and it never imports wandb for a run that did not use it.
    """
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb else None
    if run is not None:
        run.finish(exit_code=1 if failed else 0)

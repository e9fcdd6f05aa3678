"""Resuming: which checkpoint ``ckpt_path`` names (``last``: this run directory's last
checkpoint), and the run's logged history kept across the interruption."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import lightning as L

from nerlit.errors import NerlitError
from nerlit.experiments.ddp import is_global_zero
from nerlit.models.checkpoint import load_checkpoint_file, read_checkpoint


def resolve_checkpoint(
    value: str | None, run_dir: str | Path, resuming: bool = False
) -> str | None:
    """An existing checkpoint path, or None to start fresh.

    Only ``last.ckpt`` keeps the optimizer and scheduler states that resuming needs; the best
    checkpoint holds the weights alone (half the size: a test, an export and tagging read only
    weights), so ``resuming`` from it is refused in one line naming ``last.ckpt``.

    ``last`` resolves against the run directory rather than "the newest run anywhere" (what a
    user would otherwise have to guess at): resuming is re-running the interrupted command with
    ``hydra.run.dir`` pointing at its run directory, so checkpoints, logs, metrics and the W&B
    run id of the resumed run stay in one place.
    """
    if value in (None, ""):
        return None
    run_dir = Path(run_dir)
    if str(value) == "last":
        path = run_dir / "checkpoints" / "last.ckpt"
        if not path.is_file():
            raise NerlitError(
                f"ckpt_path=last: there is no {path}. Point hydra.run.dir at the run to resume "
                f"(the folder holding checkpoints/last.ckpt), e.g. python -m nerlit.train "
                f"hydra.run.dir=outputs/train/runs/<date>_<time> ckpt_path=last [the run's "
                f"overrides], or give ckpt_path=/path/to/file.ckpt."
            )
        return str(path)
    path = Path(value).expanduser()
    if not path.is_file():
        raise NerlitError(f"ckpt_path={value}: no such checkpoint file")
    checkpoint = read_checkpoint(path)  # not a nerlit checkpoint: one line, before Lightning
    if resuming and "optimizer_states" not in checkpoint:
        raise NerlitError(
            f"ckpt_path={value}: this checkpoint holds the weights only (a run's best checkpoint "
            f"does), not the optimizer state that resuming needs. Resume from the run's "
            f"checkpoints/last.ckpt, or test it with train=false"
        )
    return str(path.resolve())


def _step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or "inf")
    except ValueError:
        return float("inf")


def continue_csv_history(trainer: L.Trainer, ckpt_path: str | Path) -> int:
    """Keep the rows logged before the checkpoint in each CSV logger's ``metrics.csv``.

    Lightning's CSVLogger deletes an existing ``metrics.csv`` when it starts, so a resumed run
    kept only what it logged after resuming. Here the rows logged up to the checkpoint go back
    in front (written at once, so a second crash cannot lose them); rows of steps after it are
    dropped, since the resumed run logs those steps again: the file ends as an uninterrupted
    run's would. Called before ``fit``; returns how many rows were kept.
    """
    from lightning.pytorch.loggers import CSVLogger

    loggers = [logger for logger in trainer.loggers if isinstance(logger, CSVLogger)]
    if not loggers or not is_global_zero():
        return 0
    checkpoint = load_checkpoint_file(ckpt_path)
    resumed_at = int(checkpoint.get("global_step", 0))
    kept = 0
    for logger in loggers:
        path = Path(logger.log_dir) / "metrics.csv"
        if not path.is_file():
            continue
        with path.open(newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if _step(row) < resumed_at]
        with warnings.catch_warnings():
            # "Previous log files in this directory will be deleted": they are read back here
            warnings.filterwarnings("ignore", message="Experiment logs directory")
            writer = logger.experiment  # made now, it deletes metrics.csv
        writer.metrics[:0] = [{k: v for k, v in row.items() if v != ""} for row in rows]
        writer.save()
        kept += len(rows)
    return kept

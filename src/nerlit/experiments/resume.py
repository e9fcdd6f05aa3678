"""Which checkpoint ``ckpt_path`` names: ``last`` means this run directory's last checkpoint."""

from __future__ import annotations

from pathlib import Path

from nerlit.errors import NerlitError


def resolve_checkpoint(value: str | None, run_dir: str | Path) -> str | None:
    """An existing checkpoint path, or None to start fresh.

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
    return str(path.resolve())

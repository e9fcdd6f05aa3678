"""The directories a run writes: refused with one line when they cannot be written.

Hydra creates the run (or sweep) directory and writes ``.hydra/`` into it before nerlit's code
runs, so an unwritable ``hydra.run.dir`` (``/proc/x``, a read-only mount, a path through a file)
ended in a Python traceback from inside Hydra. :class:`OutputDirCheck`, a Hydra callback of
every verb (conf/hydra/default.yaml), tries the directory first; the verbs check the directory
they write into with :func:`ensure_writable_dir` too, for calls from Python.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from nerlit.errors import OutputPathError

log = logging.getLogger(__name__)


def ensure_writable_dir(path: str | Path, key: str) -> Path:
    """Create ``path`` (with its parents) and write a probe file in it, or raise
    :class:`OutputPathError` naming ``key=path``.

    Permission bits alone would not tell: root ignores them, and a full or read-only file system
    refuses writes whatever they say, so a file is actually created (and removed).
    """
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".nerlit-write-check-"):
            pass
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise OutputPathError(
            f"{key}={path}: cannot write there ({reason}); choose a directory you can write "
            f"to ({key}=DIR)"
        ) from None
    return path


def warn_if_reused(run_dir: Path, resuming: bool) -> None:
    """One warning when a fresh run writes into another run's directory (an explicit
    ``hydra.run.dir`` used twice): its files will be overwritten or mixed with the new ones."""
    if resuming:
        return
    earlier = [name for name in ("summary.json", "checkpoints") if (run_dir / name).exists()]
    if earlier:
        log.warning(
            "%s already holds a run (%s): its files are overwritten by this one; to continue "
            "it, pass ckpt_path=last, else leave hydra.run.dir out (a new directory per run)",
            run_dir,
            ", ".join(earlier),
        )


class OutputDirCheck(Callback):
    """Hydra callback: an unwritable run or sweep directory stops before Hydra writes into it.

    It stops with ``SystemExit``: Hydra turns any ``Exception`` a callback raises into a warning
    and goes on (to the traceback of its own ``mkdir``). ``run_dir=False`` for verbs that write
    nothing into their run directory (conf/hydra/no_run_dir.yaml): there it is the directory
    nerlit runs in, and ``nerlit predict output=-`` must work from a read-only one.
    """

    def __init__(self, run_dir: bool = True) -> None:
        self.run_dir = run_dir

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self.run_dir:
            self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir")

    @staticmethod
    def _check(config: DictConfig, key: str) -> None:
        try:
            path = OmegaConf.select(config, key)
        except Exception:  # noqa: BLE001 - e.g. ${hydra:job...}, known only in the job: Hydra's
            return
        if path is None:
            return
        try:
            ensure_writable_dir(str(path), key)
        except OutputPathError as error:
            raise SystemExit(f"nerlit: {error}") from None

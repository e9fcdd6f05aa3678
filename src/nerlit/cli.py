"""The ``nerlit`` command: ``nerlit train|evaluate|predict|export|stats [overrides]``.

One console script with verbs, as spaCy's; each verb is the Hydra app ``python -m nerlit.<verb>``
(which keeps working), so every verb takes Hydra's own flags: ``--help``, ``-m``, ``--cfg job``,
``--config-dir DIR`` (a folder of your own config groups, searched beside nerlit's; name your
options differently from ours, since on the same name Hydra takes nerlit's).
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TypeVar

from hydra.errors import CompactHydraException

from nerlit.errors import DISK_FULL, NerlitError, file_being_written

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Errors in the user's input or setup, whose messages already name the file, line and fix.
USER_ERRORS = (NerlitError, FileNotFoundError)

#: verb -> (module, what it does)
VERBS = {
    "train": (
        "nerlit.train",
        "fine-tune an encoder, test the best checkpoint, write a run folder",
    ),
    "evaluate": ("nerlit.evaluate", "score a checkpoint or exported model on a split or a file"),
    "predict": ("nerlit.predict", "tag a text, JSONL or CoNLL file with a trained model"),
    "export": ("nerlit.export", "write a checkpoint as a Hugging Face model folder"),
    "stats": ("nerlit.stats", "what a corpus looks like to the configured model"),
    "serve": ("nerlit.serve", "tag texts over HTTP, batching concurrent requests"),
    "compare": ("nerlit.compare", "is run B really better than run A: B - A, interval, p-value"),
    "audit": ("nerlit.audit", "rank a corpus's sentences by how likely their labels are wrong"),
}

USAGE = """usage: nerlit <command> [key=value ...] [group=option ...] [hydra flags]

Fine-tune BERT-family encoders for named entity recognition.

commands:
{commands}

examples:
  nerlit train data=conll data.train_file=train.txt data.val_file=dev.txt data.test_file=test.txt
  nerlit train -m optimizer.lr=3e-5,5e-5 seed=1,2,3
  nerlit train --config-dir ./configs experiment=my_recipe
  nerlit evaluate ckpt_path=outputs/train/runs/RUN/checkpoints/last.ckpt data.test_file=test.conll
  nerlit predict ckpt_path=MODEL input=texts.txt output=entities.jsonl

`nerlit <command> --help` lists what that command reads; runs go to ./outputs/.
"""


class ReportedError(CompactHydraException):
    """A user error ended where Hydra, not nerlit, reports it: in a sweep job, or in a Hydra
    callback before the job. Hydra prints a ``CompactHydraException`` as its message alone, so
    the user sees the same one line ``nerlit: ...`` as from a single run."""


def _in_sweep_job() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def exit_on_user_error(task: Callable[..., T]) -> Callable[..., T]:
    """End the run with the error's message alone: a stack trace would bury what it names.

    In a ``-m`` sweep job the job must fail, not the process: Hydra's launchers catch
    ``Exception`` only, so a ``SystemExit`` would end the whole sweep (later jobs never run, no
    sweep table). There the one line is raised as :class:`ReportedError`; the sweep records the
    job as failed with that line (``nerlit.experiments.sweep``), Optuna as a FAIL trial, and
    goes on. Any other ``SystemExit`` with an error code is turned into a failed job too. The
    line is also logged as the job fails, so a long sweep shows it then, not only at its end.
    """

    @functools.wraps(task)
    def wrapper(*args, **kwargs) -> T:
        try:
            return task(*args, **kwargs)
        except (*USER_ERRORS, OSError) as error:
            if not isinstance(error, USER_ERRORS) and error.errno not in DISK_FULL:
                raise  # any other OSError is a bug or an environment problem: its traceback
            message = error if isinstance(error, USER_ERRORS) else disk_full(error)
            if _in_sweep_job():
                log.error("nerlit: %s", message)  # seen as it happens, and in the job's log file
                raise ReportedError(f"nerlit: {message}") from None
            raise SystemExit(f"nerlit: {message}") from None
        except SystemExit as stop:
            if stop.code in (None, 0) or not _in_sweep_job():
                raise
            message = stop.code if isinstance(stop.code, str) else f"exit status {stop.code}"
            log.error("%s", message)
            raise ReportedError(message) from None

    return wrapper


def disk_full(error: OSError) -> str:
    """One line for a write that failed on a full disk (ENOSPC) or quota (EDQUOT)."""
    path = file_being_written(error)
    where = f"could not write {path}" if path else "could not write an output file"
    return (
        f"{where}: {error.strerror or 'no space left on device'}. The outputs written from then "
        f"on are missing or incomplete; free some space and run again"
    )


def usage() -> str:
    width = max(map(len, VERBS))
    commands = "\n".join(f"  {verb:<{width}}  {text}" for verb, (_, text) in VERBS.items())
    return USAGE.format(commands=commands)


def main(argv: Sequence[str] | None = None) -> None:
    """Dispatch ``nerlit <verb> ...`` to the verb's Hydra app with the remaining arguments."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    if args[0] in ("-V", "--version"):
        from nerlit import __version__

        print(f"nerlit {__version__}")
        return
    verb = args[0]
    if verb not in VERBS:
        raise SystemExit(
            f"nerlit: unknown command {verb!r}; choose one of {', '.join(VERBS)} (nerlit --help)"
        )
    module = importlib.import_module(VERBS[verb][0])
    # Hydra parses sys.argv; argv[0] names the program in its messages
    sys.argv = [f"nerlit {verb}", *args[1:]]
    run_as_module(module)
    module.main()


def run_as_module(module: ModuleType) -> None:
    """Make this process read as ``python -m <module>``, which is what it runs.

    A process that starts copies of itself (Lightning's ``ddp`` launches ranks 1..N-1, nerlit's
    ``HydraDDPStrategy`` too) re-runs ``python -m <__main__.__spec__.name>``, or else the script
    ``sys.argv[0]``; under the ``nerlit`` console script ``__main__`` has no spec and argv[0] is
    "nerlit train", so every rank died with "can't open file '<cwd>/nerlit train'" and rank 0
    waited for them until killed. With the verb's spec the ranks run ``python -m nerlit.train``.
    """
    main_module = sys.modules.get("__main__")
    if main_module is not None and module.__spec__ is not None:
        main_module.__spec__ = module.__spec__


if __name__ == "__main__":
    main()

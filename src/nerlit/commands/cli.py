"""The ``nerlit`` command: ``nerlit train|evaluate|predict|export|stats [overrides]``.

One console script with verbs, as spaCy's; each verb is the Hydra app ``python -m nerlit.<verb>``
(which keeps working), so every verb takes Hydra's own flags: ``--help``, ``-m``, ``--cfg job``,
``--config-dir DIR`` (a folder of your own config groups, searched beside nerlit's; name your
options differently from ours, since on the same name Hydra takes nerlit's).
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from hydra.errors import CompactHydraException

from nerlit.errors import DISK_FULL, NerlitError, file_being_written

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Errors in the user's input or setup, whose messages already name the file, line and fix.
USER_ERRORS = (NerlitError, FileNotFoundError)

#: verb -> what it does; each verb is the Hydra app ``nerlit.commands.<verb>``
VERBS = {
    "train": "fine-tune an encoder, test the best checkpoint, write a run folder",
    "evaluate": "score a checkpoint or exported model on a split or a file",
    "predict": "tag a text, JSONL or CoNLL file with a trained model",
    "export": "write a checkpoint as a Hugging Face model folder",
    "stats": "what a corpus looks like to the configured model",
    "serve": "tag texts over HTTP, batching concurrent requests",
    "compare": "is run B really better than run A: B - A, interval, p-value",
    "audit": "rank a corpus's sentences by how likely their labels are wrong",
    "init": "write a starter config folder (an experiment and a corpus) into your project",
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
            drop_untouched_run_dir()
            raise SystemExit(f"nerlit: {message}") from None
        except SystemExit as stop:
            if stop.code in (None, 0) or not _in_sweep_job():
                raise
            message = stop.code if isinstance(stop.code, str) else f"exit status {stop.code}"
            log.error("%s", message)
            raise ReportedError(message) from None

    return wrapper


def drop_untouched_run_dir() -> None:
    """Remove the run folder of a run refused before it wrote anything.

    Hydra makes ``outputs/<verb>/runs/<time>_<id>/`` with an empty ``<verb>.log`` and its record
    of the composed config (``.hydra/``) before the verb checks that config, so every mistyped
    value left a folder behind. Only a folder that Hydra named itself (no ``hydra.run.dir``
    given: the name is new to this run), that is not the working directory, and that holds
    nothing but those is removed.
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hydra = HydraConfig.get()
    if any(o.lstrip("+").startswith("hydra.run.dir=") for o in hydra.overrides.hydra):
        return
    remove_untouched_run_dir(Path(hydra.runtime.output_dir), hydra.job.name)


def remove_untouched_run_dir(folder: Path, job_name: str) -> None:
    """Remove ``folder`` if it holds nothing but an empty ``<job_name>.log`` and, optionally,
    Hydra's record of the composed config; never the working directory."""
    import shutil

    try:
        if folder.resolve() == Path.cwd().resolve():
            return
        entries = {entry.name: entry for entry in folder.iterdir()}
        log_file = entries.pop(f"{job_name}.log", None)
        record = entries.pop(".hydra", None)
        if entries or log_file is None or log_file.stat().st_size:
            return
        if record is not None and not {p.name for p in record.iterdir()} <= _HYDRA_RECORD:
            return
        shutil.rmtree(folder)
    except OSError:  # gone already, or not removable: keep it
        return


#: what Hydra writes into a run's output_subdir before the task starts
_HYDRA_RECORD = {"config.yaml", "hydra.yaml", "overrides.yaml"}


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
    commands = "\n".join(f"  {verb:<{width}}  {text}" for verb, text in VERBS.items())
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
    if COMPLETION_FLAGS & set(args):
        print(shell_completion(args))
        return
    verb = args[0]
    if verb not in VERBS:
        raise SystemExit(
            f"nerlit: unknown command {verb!r}; choose one of {', '.join(VERBS)} (nerlit --help)"
        )
    module = importlib.import_module(f"nerlit.commands.{verb}")
    # Hydra parses sys.argv; argv[0] names the program in its messages
    sys.argv = [f"nerlit {verb}", *args[1:]]
    run_as_module(module)
    try:
        module.main()
    except SystemExit as stop:
        if stop.code == 1:  # Hydra's own failure (its message is out): a mistyped key?
            for line in suggest_keys(verb, args[1:]):
                print(f"nerlit: {line}", file=sys.stderr)
        raise


COMPLETION_FLAGS = {"-sc", "--shell-completion"}

#: bash (and zsh through bashcompinit): verbs first, then the verb's keys and options
_BASH_COMPLETION = """_nerlit_complete() {
    local words=($COMP_LINE) current="${COMP_WORDS[COMP_CWORD]}"
    if (( COMP_CWORD <= 1 )); then
        COMPREPLY=($(compgen -W "VERBS --help --version" -- "$current"))
        return
    fi
    local choices
    choices=$(COMP_LINE="$COMP_LINE" "${words[0]}" "${words[1]}" -sc query=bash 2>/dev/null)
    COMPREPLY=($(compgen -o nospace -o default -W "$choices" -- "$current"))
}
COMP_WORDBREAKS=${COMP_WORDBREAKS//=}
complete -o nospace -o default -F _nerlit_complete nerlit"""


def shell_completion(args: Sequence[str]) -> str:
    """``nerlit -sc install=bash`` and the queries of the script it prints.

    Hydra's own completion is per app: under ``nerlit train`` it registered a stray ``train``
    command, and its query (``nerlit -sc query=bash``) reached no verb. Here one script completes
    the verbs, then each verb's keys and group options; a query is answered by Hydra's completion
    over the verb's config without importing the verb (torch and Lightning take seconds, too
    long for a tab press).
    """
    import os

    flag = next(i for i, arg in enumerate(args) if arg in COMPLETION_FLAGS)
    request = args[flag + 1] if flag + 1 < len(args) else ""
    action, _, shell = request.partition("=")
    if shell not in ("bash", "zsh") or action not in ("install", "uninstall", "query"):
        raise SystemExit(
            f'nerlit: {" ".join(args)}: use eval "$(nerlit -sc install=bash)" (bash; zsh after '
            f"autoload -U bashcompinit && bashcompinit); -sc uninstall=bash removes it"
        )
    if action == "install":
        return _BASH_COMPLETION.replace("VERBS", " ".join(VERBS))
    if action == "uninstall":
        return "complete -r nerlit 2> /dev/null"
    verb = args[0] if flag > 0 and args[0] in VERBS else None
    if verb is None:
        return ""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.core_plugins.bash_completion import BashCompletion
    from hydra._internal.utils import create_config_search_path

    from nerlit.config import CONFIG_DIR

    # Hydra's query reads "<app> <overrides>": the verb is part of the app's name here
    line = os.environ.get("COMP_LINE", "").split(verb, 1)[-1]
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(CONFIG_DIR))
    try:
        return " ".join(BashCompletion(loader)._query(config_name=f"{verb}.yaml", line=line))
    except Exception:  # noqa: BLE001 - a failed completion must stay silent, not print a trace
        return ""


def override_value(value: Any) -> str:
    """A Python value in Hydra's override grammar: strings quoted where they hold its syntax."""
    if isinstance(value, str):
        if value and all(c.isalnum() or c in "_-./:+@" for c in value):
            return value
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{override_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # numbers, true/false, null


def suggest_keys(verb: str, args: Sequence[str]) -> list[str]:
    """ "did you mean trainer.max_steps?" for each ``key=value`` whose key the verb's config lacks.

    Hydra answers a mistyped key with advice to add it (``+trainer.max_step``), which is what a
    user almost never wants. The config is composed again with the command's group choices
    (``model=...``, ``experiment=...``), and difflib finds the nearest known key. Best effort:
    anything that fails here leaves Hydra's message alone.
    """
    import difflib

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from nerlit.config import CONFIG_DIR

    try:
        overrides = OverridesParser.create().parse_overrides(
            [arg for arg in args if "=" in arg and not arg.startswith("-")]
        )
        groups = [o.input_line for o in overrides if _is_group(o.key_or_group)]
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name=f"{verb}.yaml", overrides=groups)
    except Exception:  # noqa: BLE001 - a suggestion is optional; Hydra has said what failed
        return []
    known = list(_dotted_keys(OmegaConf.to_container(cfg, resolve=False)))
    lines = []
    for override in overrides:
        key = override.key_or_group
        if _is_group(key) or key.startswith("hydra") or override.is_add() or key in known:
            continue
        if OmegaConf.select(cfg, key, default=None, throw_on_missing=False) is not None:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        if close:
            lines.append(f"{key} is not a key of nerlit {verb}; did you mean {close[0]}?")
    return lines


def _is_group(key: str) -> bool:
    """``model``, ``trainer``, ``hydra/launcher``: a folder of nerlit's configs, not a key."""
    from nerlit.config import CONFIG_DIR

    return (Path(CONFIG_DIR) / key.split("@")[0]).is_dir()


def _dotted_keys(node: object, prefix: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _dotted_keys(value, f"{prefix}{key}.")
    if prefix:
        yield prefix[:-1]


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

"""Errors in the user's input or setup. Their messages name the file, the line and the fix, so
entry points print them alone; any other exception is a bug and keeps its traceback."""

from __future__ import annotations

import contextlib
import errno
import io
import os
from pathlib import Path


class NerlitError(Exception):
    """Base of the errors a user can fix by changing data, config or environment."""


class DataError(NerlitError, ValueError):
    """The data cannot be used as configured (an unseen label, impossible split fractions...)."""


class CorpusFormatError(DataError):
    """A malformed corpus file: names the file, the line, what is wrong and what was expected."""

    def __init__(self, path: str | Path, line: int | None, problem: str, expected: str) -> None:
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}. Expected {expected}.")
        self.path, self.line = str(path), line


class ModelNotFoundError(NerlitError, RuntimeError):
    """No local copy of a model and no reachable hub; the message says how to fix it."""


class MissingExtraError(NerlitError, ImportError):
    """A chosen feature's optional dependencies are not installed; names the pip command."""


class ModelLoadError(NerlitError, RuntimeError):
    """The path is not a usable model; the message names it and says how to fix it."""


class OptionError(NerlitError, ValueError):
    """An option with a value nerlit does not know (decode, format, split)."""


class ConfigError(OptionError):
    """A config value of the wrong type or range, or an unknown key: names key, value, what fits."""


class OutputPathError(NerlitError, OSError):
    """A path nerlit must write (a run directory, an output file) cannot be written there."""


class WandbError(NerlitError, RuntimeError):
    """W&B cannot log as asked (server unreachable, no credentials); the message says what to do."""


class ExportError(NerlitError, RuntimeError):
    """An exported model does not compute what the original does (checked right after export)."""


#: errno values of a full disk or an exhausted quota: the user's to fix, not a bug
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def file_being_written(error: BaseException) -> str | None:
    """The file a failed write was writing: the error's own ``filename`` (set by ``open``), else
    the innermost open writable file (or ``Path.write_text``'s path) on the traceback, since a
    failing ``write``/``flush``/``close`` names none."""
    if getattr(error, "filename", None):
        return str(error.filename)
    frames = []
    tb = error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        if frame.f_code.co_name in ("write_text", "write_bytes") and isinstance(
            frame.f_locals.get("self"), os.PathLike
        ):
            return os.fspath(frame.f_locals["self"])
        for value in frame.f_locals.values():
            if isinstance(value, io.IOBase) and set(str(getattr(value, "mode", ""))) & set("wax+"):
                with contextlib.suppress(ValueError):  # a closed file may not tell its name
                    if isinstance(value.name, str):
                        return value.name
    return None


class TrainingError(NerlitError, RuntimeError):
    """Training went where its settings lead (a NaN or infinite loss); names them and the fix."""

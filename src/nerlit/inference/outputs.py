"""Outputs written whole or not at all: predict's file and export's folder.

A tagged file or an exported model that is half written, or merged with what was there before,
looks like a result and is not one: a predict run that fails on line 4,000 must not leave the
previous output truncated to nothing, and an export into a folder holding another model's
``special_tokens_map.json`` silently changes the tokenizer, and so the model's outputs. Both are
written into a temporary path beside the target (same file system, so the final rename is
atomic) and moved into place only when complete. A path that cannot be written is one line
naming it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from nerlit.errors import DISK_FULL, OutputPathError, file_being_written

try:
    import fcntl
except ImportError:  # Windows: no flock; a stale .partial is still replaced
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


def unwritable(option: str, path: Path, error: OSError) -> OutputPathError:
    """One line naming the path, and why (the part of it that is a file, the missing folder)."""
    reason = error.strerror or str(error)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                reason = f"{parent} is a file"
            break
    return OutputPathError(f"{option}={path}: cannot write there ({reason}); choose another path")


def check_file_target(path: str | Path, option: str = "output") -> Path:
    """``path`` if a file can be written there, checked before the work whose result it keeps:
    a folder, a missing or read-only parent would otherwise be found only after all of it."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise OutputPathError(f"{option}={target} is a folder: name a file to write")
    parent = next((p for p in target.parents if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise unwritable(option, target, PermissionError(13, "permission denied"))
    return target


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")


def partial_path(path: str | Path) -> Path:
    """Where ``path`` is written until complete: ``<path>.partial``, beside it and not hidden, so
    a user who finds one after a killed run knows what it is (a hidden ``.name.<hex>.tmp`` of
    206 MB was left behind unseen)."""
    target = Path(path).expanduser()
    return target.with_name(f"{target.name}.partial")


def _lock_partial(partial: Path, option: str, target: Path) -> int:
    """An open descriptor of ``partial``, created if need be and locked for this process alone.

    A ``.partial`` no process holds is a stale one, left by a run that was killed: it is
    truncated here (and logged). One another process holds is a run writing the same output now:
    refused in one line rather than both writing into one file.
    """
    while True:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT, 0o666)  # umask applies
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputPathError(
                f"{option}={target}: another run is writing it now ({partial} is in use); "
                f"wait for it, or choose another output"
            ) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(partial))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the run that held it just renamed it into place: take a new one


@contextlib.contextmanager
def atomic_text_file(path: str | Path, option: str = "output") -> Iterator[TextIO]:
    """A UTF-8 text file that appears at ``path`` (replacing any file there) only once the block
    ends without an error; until then the old file is untouched and the text grows in
    :func:`partial_path`, which an error removes and the next run replaces if a kill left it."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise OutputPathError(f"{option}={target} is a folder: name a file to write")
    partial = partial_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        stale = partial.exists()
        lock = _lock_partial(partial, option, target)
    except OutputPathError:
        raise
    except OSError as error:
        raise unwritable(option, target, error) from None
    try:
        if stale or os.fstat(lock).st_size:
            log.warning("removed %s, left by an interrupted run writing %s", partial, target.name)
        os.ftruncate(lock, 0)
        # a duplicate descriptor for writing: closing it keeps the lock until the file is placed
        with open(os.dup(lock), "w", encoding="utf-8") as handle:
            yield handle
        if target.is_file():
            partial.chmod(target.stat().st_mode & 0o7777)
        os.replace(partial, target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        if error.errno in DISK_FULL:
            before = "is as it was" if target.exists() else "was not created"
            raise OutputPathError(
                f"{option}={target}: could not be written ({error.strerror}); nothing was "
                f"changed ({target.name} {before}): free some space and run again"
            ) from None
        raise
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        os.close(lock)


def check_fresh_folder(path: str | Path, overwrite: bool, option: str = "output_dir") -> Path:
    """``path`` if a folder can be written there: new, empty, or replaced with ``overwrite``."""
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise OutputPathError(f"{option}={target} is a file, not a folder")
    entries = sorted(p.name for p in target.iterdir()) if target.is_dir() else []
    if entries and not overwrite:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise OutputPathError(
            f"{option}={target} is not empty ({shown}): an export never merges into a folder "
            f"(stale files change the model); choose a new folder, or pass overwrite=true to "
            f"replace it"
        )
    return target


@contextlib.contextmanager
def fresh_folder(path: str | Path, overwrite: bool = False, option: str = "output_dir"):
    """A new, empty folder to fill; it replaces ``path`` when the block ends without an error.

    A non-empty ``path`` is refused unless ``overwrite``, and then replaced whole, never merged
    into. The old folder is moved aside before the new one takes its name and deleted after, so
    at every moment ``path`` holds one complete model.

    Without ``overwrite`` the finished folder takes ``path`` by one ``rename``, which the kernel
    refuses onto a folder that is not empty: of two exports racing into one new folder, checked
    free by both at their start, the second to finish is refused, where it used to move the
    first one's model aside and delete it (both exited 0).
    """
    target = check_fresh_folder(path, overwrite, option)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = _temporary(target)
        temp.mkdir()
    except OSError as error:
        raise unwritable(option, target, error) from None
    try:
        yield temp
        if not overwrite:
            _place_exclusively(temp, target, option)
            return
        old = None
        if target.is_dir():
            if any(target.iterdir()):
                old = _temporary(target)
                target.rename(old)
            else:
                target.rmdir()
        try:
            temp.rename(target)
        except BaseException:
            if old is not None:
                old.rename(target)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as error:
        shutil.rmtree(temp, ignore_errors=True)
        if error.errno in DISK_FULL:
            written = file_being_written(error)
            part = f" while writing {Path(written).name}" if written else ""
            before = "is as it was" if target.exists() else "was not created"
            raise OutputPathError(
                f"{option}={target}: the export could not be written{part} ({error.strerror}); "
                f"nothing was exported ({target.name} {before}): free some space and run again"
            ) from None
        raise
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _place_exclusively(temp: Path, target: Path, option: str) -> None:
    """Rename ``temp`` onto ``target``, which may be absent or an empty folder, never anything
    else: the check and the move are one system call, so no other writer can slip between."""
    try:
        os.rename(temp, target)
    except OSError as error:
        if error.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise OutputPathError(
                f"{option}={target} already exists (written by another export meanwhile); "
                f"nothing of this export was kept: pass overwrite=true to replace it"
            ) from None
        raise unwritable(option, target, error) from None

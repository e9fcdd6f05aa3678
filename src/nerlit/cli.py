"""What every ``python -m nerlit.<verb>`` entry point shares."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from nerlit.errors import NerlitError

T = TypeVar("T")

#: Errors in the user's input or setup, whose messages already name the file, line and fix.
USER_ERRORS = (NerlitError, FileNotFoundError)


def exit_on_user_error(task: Callable[..., T]) -> Callable[..., T]:
    """End the run with the error's message alone: a stack trace would bury what it names."""

    @functools.wraps(task)
    def wrapper(*args, **kwargs) -> T:
        try:
            return task(*args, **kwargs)
        except USER_ERRORS as error:
            raise SystemExit(f"nerlit: {error}") from None

    return wrapper

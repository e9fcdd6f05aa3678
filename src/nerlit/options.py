"""Settings objects and the rules of their values: what a setting allows, in words, and its test.

A setting of nerlit's library (the Tagger's options, the reading options) is a field of one
frozen :class:`Options` dataclass with its :class:`Rule` beside it. The object checks itself when
made (from Python, from a config, from a run's record), and ``config_checks`` reads the same
rules for the verbs' keys, so a value is judged in one place and in one wording whether it came
from Python or from an override.

Why rules and not types alone: a type hint cannot say "a batch size >= 1", "a codec Python knows"
or what null means; the rules say it in the words the error line prints.
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from typing_extensions import Self


#: The smallest window a length setting may ask for: the 2 special tokens plus 2 subwords.
MIN_WINDOW = 4


@dataclass(frozen=True)
class Rule:
    """What a key allows, in words, and the test of a value; ``null`` says what null means."""

    allowed: str
    test: Callable[[Any], bool]
    null: str | None = None

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.null is not None
        try:
            return bool(self.test(value))
        except (TypeError, ValueError):
            return False

    def describe(self) -> str:
        return self.allowed if self.null is None else f"{self.allowed}, or null ({self.null})"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def shown(value: Any) -> str:
    """A value as it would be typed in an override."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value if value and value.strip() == value and "," not in value else repr(value)
    if isinstance(value, list):
        return "[" + ",".join(map(shown, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {shown(v)}" for k, v in value.items()) + "}"
    return str(value)


def expected(key: str, value: Any, allowed: str) -> str:
    """The one wording of a refused value, from Python or from an override."""
    return f"{key}={shown(value)}: expected {allowed}"


def integer(minimum: int, maximum: int | None = None, *, null: str | None = None) -> Rule:
    bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
    return Rule(
        f"an integer {bound}",
        lambda v: is_int(v) and v >= minimum and (maximum is None or v <= maximum),
        null,
    )


def number(
    low: float,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
    null: str | None = None,
) -> Rule:
    if high is None:
        text = f"a number {'>' if open_low else '>='} {low:g}"
    else:
        text = f"a number in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"

    def test(v: Any) -> bool:
        if not is_number(v):
            return False
        above = v > low if open_low else v >= low
        below = high is None or (v < high if open_high else v <= high)
        return above and below

    return Rule(text, test, null)


def one_of(choices: Iterable[Any], *, null: str | None = None) -> Rule:
    choices = tuple(choices)
    return Rule(f"one of {', '.join(map(shown, choices))}", lambda v: v in choices, null)


def _known_codec(value: Any) -> bool:
    try:
        return isinstance(value, str) and bool(codecs.lookup(value))
    except LookupError:
        return False


def codec(*, null: str | None = None) -> Rule:
    return Rule("an encoding Python knows (utf-8, latin-1, cp1252, ...)", _known_codec, null)


def window_length(*, null: str | None = None) -> Rule:
    """A window's length in subwords (``max_length``): at least :data:`MIN_WINDOW`."""
    bound = integer(MIN_WINDOW)
    return Rule(f"{bound.allowed} (a window's 2 special tokens and 2 subwords)", bound.test, null)


def is_pad_multiple(value: Any) -> bool:
    """A padding multiple a user may give: a whole number of subwords >= 1, or ``auto``; the
    one test behind the training data's, the Tagger's and the config checks' refusals."""
    return value == "auto" or (is_int(value) and value >= 1)


def pad_multiple(auto: str, *, null: str | None = None) -> Rule:
    """``pad_to_multiple_of``; ``auto`` says what auto means where the rule is used."""
    return Rule(f"an integer >= 1 (1: exact padding) or auto ({auto})", is_pad_multiple, null)


#: a file's column by number, a saved dataset's (data.format=datasets) by name
COLUMN = Rule(
    "an integer (0: the first column, -1: the last), or a dataset's column name",
    lambda v: is_int(v) or (isinstance(v, str) and v.strip() != ""),
)


class Options:
    """Base of nerlit's settings dataclasses: each field's rule in :attr:`RULES`, checked when
    the object is made (``ERROR``, with the field named as ``KEY_PREFIX`` + name), and
    :meth:`from_config` to read the fields from a config or a run's record."""

    RULES: ClassVar[Mapping[str, Rule]] = {}
    ERROR: ClassVar[type[Exception]] = ValueError
    KEY_PREFIX: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for name, rule in self.RULES.items():
            value = getattr(self, name)
            if not rule.accepts(value):
                raise self.ERROR(expected(f"{self.KEY_PREFIX}{name}", value, rule.describe()))

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> Self:
        """The options among ``values`` (a verb's config, a run's record); null or absent ones
        keep their defaults."""
        given = {option.name: values.get(option.name) for option in fields(cls)}
        return cls(**{name: value for name, value in given.items() if value is not None})

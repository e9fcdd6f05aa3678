"""Saved Hugging Face datasets -> :class:`Sentence` per row (``data=hf``, ``data.format=datasets``).

A folder that ``DatasetDict.save_to_disk`` (or ``Dataset.save_to_disk``) wrote is one more source
of pre-split sentences: each row passes the checks of a JSONL record
(:func:`~nerlit.data.readers.check_tagged_words`), and :mod:`nerlit.data.corpus` detects schemes,
repairs tags and carves missing splits exactly as for files. Errors name the folder, the split,
the row (counted from 0, as ``dataset[split][row]`` indexes it) and the fix. ``datasets`` is the
``hf`` extra: imported here only, and only when such a folder is read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerlit.data.readers import check_tagged_words
from nerlit.data.types import Sentence
from nerlit.errors import CorpusFormatError
from nerlit.extras import require

log = logging.getLogger(__name__)

FORMAT = "datasets"
#: nerlit's splits, in order
SPLITS = ("train", "val", "test")
#: rows taken from Arrow at a time
BATCH = 1000
_SAVED = "a folder written by DatasetDict.save_to_disk or Dataset.save_to_disk"


@dataclass(frozen=True)
class DatasetSplit:
    """One split of a saved dataset: the split ``split`` of the DatasetDict in ``folder``, or
    every row of the one Dataset saved there (``split=None``)."""

    folder: str
    split: str | None = None

    def __str__(self) -> str:
        return f"{self.folder}, split {self.split!r}" if self.split else self.folder

    def source(self) -> str:
        """What ``split.json`` records: the resolved folder, and the split."""
        resolved = DatasetSplit(str(Path(self.folder).expanduser().resolve()), self.split)
        return str(resolved)


def load_saved(folder: str | Path) -> Any:
    """The Dataset or DatasetDict saved in ``folder``; a missing or foreign folder is one line."""
    require("data.format=datasets")
    import datasets

    path = Path(folder).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"{folder}: no such dataset folder. Check data.train_file (and data.val_file, "
            f"data.test_file): each is {_SAVED}"
        )
    try:
        return datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise CorpusFormatError(
            folder,
            None,
            "not a saved Hugging Face dataset (no dataset_dict.json or state.json in it)",
            f"{_SAVED}; for a Hub dataset, run datasets.load_dataset(NAME).save_to_disk(FOLDER) "
            "once, online",
        ) from None


def is_dict(saved: Any) -> bool:
    """Whether a saved dataset is a DatasetDict (named splits) rather than one Dataset."""
    from datasets import DatasetDict

    return isinstance(saved, DatasetDict)


def dataset_splits(
    train_file: str | Path,
    val_file: str | Path | None,
    test_file: str | Path | None,
    names: Mapping[str, str | None],
) -> dict[str, DatasetSplit | None]:
    """Where each of nerlit's splits is read: from its own ``data.{split}_file`` folder when
    given, else from train's; in a DatasetDict, the split ``names[split]`` names
    (``data.{split}_split``). None: carve it from train, as for a missing file.

    A val/test split the DatasetDict lacks is carved, unless the DatasetDict holds a split no
    option names (``dev`` beside ``validation``'s default): then it is an error, since carving
    would leave the user's own validation split unread.
    """
    given = {"train": train_file, "val": val_file, "test": test_file}
    opened: dict[str, Any] = {}
    found: dict[str, DatasetSplit | None] = {}
    for split in SPLITS:
        own = given[split]
        folder = str(Path(own or train_file).expanduser())
        if folder not in opened:
            opened[folder] = load_saved(folder)
        saved, name, option = opened[folder], names[split], f"data.{split}_split"
        if not is_dict(saved):  # one Dataset: the rows of its own split
            found[split] = DatasetSplit(folder) if own else None
            continue
        available = list(saved.keys())
        if name is not None and name in available:
            found[split] = DatasetSplit(folder, name)
            continue
        shown = ", ".join(available)
        if own:
            raise CorpusFormatError(
                folder,
                None,
                f"{option}={'null' if name is None else name}, but the DatasetDict's splits "
                f"are {shown}",
                f"{option} set to the one to read as {split}",
            )
        unused = [s for s in available if s not in names.values()]
        if name is not None and unused:
            raise CorpusFormatError(
                folder,
                None,
                f"no split {name!r} ({option}) among its splits {shown}, and {unused[0]!r} "
                "would go unread",
                f"{option}={unused[0]} to read {split} from it, or {option}=null to carve "
                f"{split} out of train",
            )
        if name is not None:
            log.info("%s: no split %r in %s (its splits: %s)", split, name, folder, shown)
        found[split] = None
    return found


def _inner(feature: Any) -> Any:
    """The feature of a list column's items (``Sequence``, ``List``, ``[feature]``), else None."""
    if isinstance(feature, list):
        return feature[0] if len(feature) == 1 else None
    return getattr(feature, "feature", None)


def _tag_names(features: Mapping, source: DatasetSplit, column: str) -> list[str] | None:
    """A ClassLabel column's names (the tags its integers stand for); None for string tags."""
    from datasets import ClassLabel, Value

    inner = _inner(features[column])
    if isinstance(inner, ClassLabel):
        return list(inner.names)
    if isinstance(inner, Value) and inner.dtype in ("string", "large_string"):
        return None
    if isinstance(inner, Value) and "int" in inner.dtype:
        raise CorpusFormatError(
            source,
            None,
            f"data.tag_column={column} holds integers, but no ClassLabel names what they stand for",
            f"tags as strings or a ClassLabel list: dataset.cast_column({column!r}, "
            "Sequence(ClassLabel(names=[...]))), saved again",
        )
    raise CorpusFormatError(
        source,
        None,
        f"data.tag_column={column} is a column of {features[column]}",
        "a list of tags per row: a list of strings, or of a ClassLabel",
    )


def _check_columns(dataset: Any, source: DatasetSplit, token_column: Any, tag_column: Any) -> None:
    """Both options name two different columns, the tokens one of lists of strings."""
    columns = list(dataset.column_names)
    shown = ", ".join(columns)
    for option, column, holds in (
        ("data.token_column", token_column, "tokens"),
        ("data.tag_column", tag_column, "tags"),
    ):
        if not isinstance(column, str):
            raise CorpusFormatError(
                source,
                None,
                f"{option}={column} is a column number, but a dataset's columns have names "
                f"({shown})",
                f"the name of its column of {holds}: {option}=NAME (data=hf sets tokens and "
                "ner_tags)",
            )
        if column not in columns:
            raise CorpusFormatError(
                source,
                None,
                f"no column {column!r} ({option}); its columns are {shown}",
                f"the name of its column of {holds}: {option}=NAME",
            )
    if token_column == tag_column:
        raise CorpusFormatError(
            source,
            None,
            f"data.token_column and data.tag_column both name the column {token_column!r}",
            "the column of tokens and the column of tags",
        )
    inner = _inner(dataset.features[token_column])
    if getattr(inner, "dtype", None) not in ("string", "large_string"):
        raise CorpusFormatError(
            source,
            None,
            f"data.token_column={token_column} is a column of {dataset.features[token_column]}",
            "a list of strings per row, the sentence's tokens",
        )


def iter_dataset(
    source: DatasetSplit, token_column: Any, tag_column: Any, scheme: str = "auto"
) -> Iterator[Sentence]:
    """The rows of one saved split as sentences, with tags as named (ClassLabel integers become
    their names) and every check of a file's sentences made. The folder and the columns are
    checked here, before the first sentence is asked for; each row as it is read."""
    saved = load_saved(source.folder)
    if source.split is not None:
        dataset = saved[source.split]
    elif is_dict(saved):
        raise CorpusFormatError(
            source,
            None,
            f"a DatasetDict (splits {', '.join(saved.keys())}), read here as one split",
            "data.train_file set to the folder, and data.val_split/data.test_split to its splits",
        )
    else:
        dataset = saved
    _check_columns(dataset, source, token_column, tag_column)
    names = _tag_names(dataset.features, source, tag_column)
    return _rows(dataset.select_columns([token_column, tag_column]), source, names, scheme)


def _rows(
    dataset: Any, source: DatasetSplit, names: list[str] | None, scheme: str
) -> Iterator[Sentence]:
    """:func:`iter_dataset`'s sentences, each row checked as it is read."""
    token_column, tag_column = dataset.column_names
    prefix = source.split or Path(source.folder).name
    fix = "fix the row (Dataset.map) or drop it (Dataset.filter), and save the dataset again"
    blank = f"tokens with a character other than whitespace: {fix}"
    row = -1
    for batch in dataset.iter(batch_size=BATCH):
        for words, tags in zip(batch[token_column], batch[tag_column]):
            row += 1
            place = f"{source}, row {row}"

            def fail(problem: str, expected: str = blank, place: str = place) -> CorpusFormatError:
                return CorpusFormatError(place, None, problem, expected)

            if words is None or tags is None:
                column = token_column if words is None else tag_column
                raise fail(f"{column!r} is null", f"a list in every row: {fix}")
            if names is not None:
                for index, tag in enumerate(tags, start=1):
                    if not isinstance(tag, int) or not 0 <= tag < len(names):
                        raise fail(
                            f"tag {index} is {tag}, no class of {tag_column!r}'s ClassLabel "
                            f"(0 to {len(names) - 1})",
                            f"a class number for every token: {fix}",
                        )
                tags = [names[tag] for tag in tags]
            if len(words) != len(tags):
                raise fail(
                    f"{len(words)} tokens in {token_column!r} but {len(tags)} tags in "
                    f"{tag_column!r}",
                    f"one tag per token: {fix}",
                )
            check_tagged_words(words, tags, scheme, place, None, fail)
            yield Sentence(tuple(words), tuple(tags), f"{prefix}:{row}")
    if row < 0:
        raise CorpusFormatError(source, None, "the split holds no rows", "at least 1 row")

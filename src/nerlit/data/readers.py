"""Corpus readers: files on disk -> :class:`Corpus`. Every error names the file, line and fix."""

from __future__ import annotations

import csv
import gzip
import io
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

from nerlit.data.schemes import check_tag, iob1_to_iob2
from nerlit.data.types import Corpus, Sentence


class CorpusFormatError(ValueError):
    """Bad input: the message names the file, the line, what is wrong and what was expected."""

    def __init__(self, path: str | Path, line: int | None, problem: str, expected: str) -> None:
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}. Expected {expected}.")
        self.path, self.line = str(path), line


def _open_text(path: Path, encoding: str) -> io.TextIOBase:
    """Open plain or gzip text; ``newline=''`` leaves U+0085 and CRLF to the csv module."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such corpus file (check data paths in conf/data/)")
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding=encoding, newline="")


def split_sentences(
    sentences: Sequence[Sentence], fractions: Sequence[float], seed: int
) -> tuple[list[Sentence], list[Sentence], list[Sentence]]:
    """A fixed, seeded sentence-level split: the same seed always gives the same three lists."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be three numbers summing to 1, got {fractions}")
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    n_train = int(round(fractions[0] * len(order)))
    n_val = int(round(fractions[1] * len(order)))
    pick = [sentences[i] for i in order]
    return pick[:n_train], pick[n_train : n_train + n_val], pick[n_train + n_val :]


def _gmb_rows(path: Path, encoding: str) -> Iterator[tuple[int, list[str | None], int, int]]:
    """Yield (line number, [sentence, word, tag], columns on the row, columns in the header)."""
    with _open_text(path, encoding) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise CorpusFormatError(
                path, 1, "the file is empty", "a header 'Sentence #,Word,POS,Tag'"
            )
        names = [h.strip().lower() for h in header]
        try:
            cols = names.index("sentence #"), names.index("word"), names.index("tag")
        except ValueError:
            raise CorpusFormatError(
                path,
                1,
                f"header {header!r} lacks a needed column",
                "'Sentence #', 'Word' and 'Tag'",
            ) from None
        for row in reader:
            fields = [row[c] if c < len(row) else None for c in cols]
            yield reader.line_num, fields, len(row), len(header)


def read_gmb(
    path: str | Path,
    encoding: str = "cp1252",
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    split_seed: int = 42,
) -> Corpus:
    """Read the GMB/Kaggle CSV (``Sentence #`` filled on a sentence's first row only).

    cp1252, not latin-1: the file's curly quotes and dashes (0x91-0x97) are cp1252 characters;
    latin-1 maps them to C1 control characters that tokenizers silently drop.
    """
    path = Path(path)
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    current = None
    for line, (sent, word, tag), n_cols, n_expected in _gmb_rows(path, encoding):
        if n_cols != n_expected:
            raise CorpusFormatError(
                path, line, f"{n_cols} columns", f"{n_expected} columns like the header"
            )
        if sent:
            if words:
                sentences.append(Sentence(tuple(words), tuple(tags), current))
            current, words, tags = sent.strip(), [], []
        elif current is None:
            raise CorpusFormatError(
                path, line, "the first data row has no 'Sentence #'", "'Sentence: 1' on it"
            )
        tag = tag.strip()
        if not check_tag(tag):
            raise CorpusFormatError(path, line, f"unknown tag {tag!r}", "O, B-TYPE or I-TYPE")
        words.append(word)
        tags.append(tag)
    if words:
        sentences.append(Sentence(tuple(words), tuple(tags), current))
    if not sentences:
        raise CorpusFormatError(path, None, "no sentences", "rows of 'Sentence #,Word,POS,Tag'")
    sentences = [Sentence(s.words, tuple(iob1_to_iob2(s.tags)), s.id) for s in sentences]
    train, val, test = split_sentences(sentences, split_fractions, split_seed)
    return Corpus(train, val, test, name="gmb", sources={"all": str(path)})


def read_conll_file(
    path: str | Path, scheme: str = "iob2", encoding: str = "utf-8", tag_column: int = -1
) -> list[Sentence]:
    """Read CoNLL columns (token first, tag last); blank lines end sentences, -DOCSTART- is dropped.

    ``scheme='iob1'`` converts to IOB2: CoNLL-2003 ships IOB1, where I- starts most entities.
    """
    path = Path(path)
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    n_cols = None

    def flush(line: int) -> None:
        nonlocal words, tags
        if words:
            fixed = iob1_to_iob2(tags) if scheme == "iob1" else tags
            sentences.append(Sentence(tuple(words), tuple(fixed), f"{path.name}:{line}"))
        words, tags = [], []

    start = 1
    with _open_text(path, encoding) as handle:
        for line_no, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                flush(start)
                start = line_no + 1
                continue
            if fields[0] == "-DOCSTART-":
                start = line_no + 1
                continue
            if n_cols is None:
                n_cols = len(fields)
                if n_cols < 2:
                    raise CorpusFormatError(
                        path, line_no, "only one column", "'token ... tag' columns"
                    )
            if len(fields) != n_cols:
                raise CorpusFormatError(
                    path, line_no, f"{len(fields)} columns", f"{n_cols} like the lines before"
                )
            tag = fields[tag_column]
            if not check_tag(tag):
                raise CorpusFormatError(
                    path, line_no, f"unknown tag {tag!r}", "O, B-TYPE or I-TYPE"
                )
            words.append(fields[0])
            tags.append(tag)
    flush(start)
    if not sentences:
        raise CorpusFormatError(path, None, "the file holds no sentences", "CoNLL column lines")
    return sentences


def read_conll(
    train_file: str | Path,
    val_file: str | Path,
    test_file: str | Path,
    scheme: str = "iob2",
    encoding: str = "utf-8",
    name: str = "conll",
) -> Corpus:
    """Three CoNLL column files, one per split."""
    files = {"train": train_file, "val": val_file, "test": test_file}
    splits = {k: read_conll_file(v, scheme=scheme, encoding=encoding) for k, v in files.items()}
    return Corpus(**splits, name=name, sources={k: str(v) for k, v in files.items()})

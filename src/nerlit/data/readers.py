"""File formats -> lists of :class:`Sentence` with the file's own tags (scheme untouched).

Every error names the file, the line, what is wrong and what was expected, and is raised while
reading, before any training starts.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nerlit.data.schemes import check_tag
from nerlit.data.types import Sentence
from nerlit.data.words import split_words
from nerlit.errors import CorpusFormatError, DataError

log = logging.getLogger(__name__)

FORMATS = ("conll", "jsonl", "gmb")


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such corpus file. Check the data.*_file settings; the presets (data=gmb, "
            "data=conll2003) read under paths.data_dir: set NERLIT_DATA_DIR to the folder holding "
            "gmb/ and conll2003/"
        )
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _decoded_lines(path: Path, encoding: str | None) -> Iterator[tuple[int, str]]:
    """(line number, text) with CR/LF stripped.

    ``encoding=None``: UTF-8, and if the file is not valid UTF-8, latin-1 for the whole file
    (it decodes any byte). An explicit encoding that fails names the offending line.
    """
    raw = _read_bytes(path)
    if encoding is None:
        try:
            raw.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            log.warning("%s is not valid UTF-8; reading it as latin-1 (set data.encoding)", path)
            encoding = "latin-1"
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode(encoding)
        except UnicodeDecodeError as error:
            raise CorpusFormatError(
                path,
                number,
                f"bytes not valid in {encoding} ({error.reason})",
                "text in data.encoding (or data.encoding=null to fall back to latin-1)",
            ) from None
        yield number, text.rstrip("\r")


@dataclass(frozen=True)
class ConllBlock:
    """Consecutive lines of a CoNLL file: a sentence's word lines with their ``columns``, or one
    line that holds no word (blank, or a ``-DOCSTART-`` marker) with no columns."""

    start: int  # the first line's number
    lines: list[str]
    columns: list[list[str]]
    document: str | None


def conll_blocks(lines: Iterable[tuple[int, str]], name: str) -> Iterator[ConllBlock]:
    """(line number, text) lines -> blocks; a whitespace-only line ends a sentence.

    Columns are tab-separated if the line holds a tab (so a token may contain spaces), else
    separated by runs of spaces. ``-DOCSTART-`` lines are document markers, not words: each
    starts a document named ``name:line``, which the blocks after it carry (document context).
    Blocks before the first marker (all of them in a file without one) have no document, since
    where their documents begin and end is unknown.
    """
    document: str | None = None
    start, block, columns = 0, [], []
    for number, line in lines:
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields] if line.strip() else []
        if fields and fields[0] != "-DOCSTART-":
            start = start if block else number
            block.append(line)
            columns.append(fields)
            continue
        if block:  # a marker right after a word line still ends that sentence
            yield ConllBlock(start, block, columns, document)
            block, columns = [], []
        if fields:
            document = f"{name}:{number}"
        yield ConllBlock(number, [line], [], document)
    if block:
        yield ConllBlock(start, block, columns, document)


def conll_field(fields: list[str], column: int, path: str | Path, number: int) -> str:
    try:
        return fields[column]
    except IndexError:
        raise CorpusFormatError(
            path,
            number,
            f"no column {column}",
            f"token_column and tag_column within the line's {len(fields)} columns",
        ) from None


def read_conll_file(
    path: str | Path, encoding: str | None = None, token_column: int = 0, tag_column: int = -1
) -> list[Sentence]:
    """CoNLL-style columns, one word per line (see :func:`conll_blocks`), with a tag column."""
    path = Path(path)
    sentences: list[Sentence] = []
    n_cols = None
    for block in conll_blocks(_decoded_lines(path, encoding), path.name):
        words, tags = [], []
        for number, fields in enumerate(block.columns, start=block.start):
            n_cols = n_cols or len(fields)
            if len(fields) != n_cols or len(fields) < 2:
                raise CorpusFormatError(
                    path,
                    number,
                    f"{len(fields)} columns",
                    f"{max(n_cols, 2)} columns (token ... tag) like the first line",
                )
            tag = conll_field(fields, tag_column, path, number)
            if not check_tag(tag):
                raise CorpusFormatError(
                    path, number, f"unknown tag {tag!r}", "O or B-/I-/E-/S- followed by a type"
                )
            words.append(conll_field(fields, token_column, path, number))
            tags.append(tag)
        if words:
            sentences.append(
                Sentence(tuple(words), tuple(tags), f"{path.name}:{block.start}", block.document)
            )
    if not sentences:
        raise CorpusFormatError(path, None, "the file holds no sentences", "CoNLL column lines")
    return sentences


def _jsonl_sentence(path: Path, number: int, record: object) -> Sentence:
    def fail(problem: str) -> CorpusFormatError:
        return CorpusFormatError(
            path,
            number,
            problem,
            '{"tokens": [...], "tags": [...]} or {"text": "...", "entities": '
            '[{"start": int, "end": int, "label": "TYPE"}]}',
        )

    where = f"{path.name}:{number}"
    document = record.get("document") if isinstance(record, dict) else None
    if isinstance(document, bool) or not isinstance(document, (str, int, type(None))):
        raise fail(f"'document' must be a string or an integer, got {document!r}")
    document = None if document is None else str(document)
    if isinstance(record, dict) and "tokens" in record:
        words, tags = record.get("tokens"), record.get("tags")
        if not isinstance(words, list) or not isinstance(tags, list) or len(words) != len(tags):
            raise fail("'tokens' and 'tags' must be lists of the same length")
        for tag in tags:
            if not isinstance(tag, str) or not check_tag(tag):
                raise fail(f"unknown tag {tag!r}")
        return Sentence(tuple(map(str, words)), tuple(tags), where, document)
    if isinstance(record, dict) and "text" in record:
        text, entities = record["text"], record.get("entities", [])
        if not isinstance(text, str) or not isinstance(entities, list):
            raise fail("'text' must be a string and 'entities' a list")
        spans = split_words(text)
        starts = {s: i for i, (_, s, _) in enumerate(spans)}
        ends = {e: i for i, (_, _, e) in enumerate(spans)}
        tags = ["O"] * len(spans)
        for entity in entities:
            try:
                start, end, label = int(entity["start"]), int(entity["end"]), str(entity["label"])
            except (KeyError, TypeError, ValueError):
                raise fail(f"entity {entity!r} lacks an integer start/end or a label") from None
            if not 0 <= start < end <= len(text):
                raise fail(
                    f"entity [{start}, {end}) falls outside the text of {len(text)} characters"
                )
            if start not in starts or end not in ends:
                cut = next(
                    (w for w, s, e in spans if s < start < e or s < end < e), text[start:end]
                )
                raise fail(
                    f"entity [{start}, {end}) {text[start:end]!r} cuts the word {cut!r}; entity "
                    f"offsets must fall on word boundaries (see nerlit.data.words)"
                )
            first, last = starts[start], ends[end]
            if any(t != "O" for t in tags[first : last + 1]):
                raise fail(f"entity [{start}, {end}) overlaps another entity")
            tags[first : last + 1] = [f"B-{label}"] + [f"I-{label}"] * (last - first)
        return Sentence(tuple(w for w, _, _ in spans), tuple(tags), where, document)
    raise fail("the record has neither 'tokens' nor 'text'")


def read_jsonl_file(path: str | Path, encoding: str | None = None) -> list[Sentence]:
    """One JSON object per line: pre-split tokens with tags, or text with character offsets.

    An optional ``"document"`` key names the record's document (for document context).
    """
    path = Path(path)
    sentences = []
    for number, line in _decoded_lines(path, encoding):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise CorpusFormatError(
                path,
                number,
                f"not valid JSON ({error.msg} at column {error.colno})",
                "one JSON object per line",
            ) from None
        sentences.append(_jsonl_sentence(path, number, record))
    if not sentences:
        raise CorpusFormatError(
            path, None, "the file holds no sentences", "one JSON object per line"
        )
    return sentences


def read_gmb_file(path: str | Path, encoding: str | None = "cp1252") -> list[Sentence]:
    """The GMB/Kaggle CSV: ``Sentence #`` is filled on a sentence's first row only.

    cp1252, not latin-1: the file's curly quotes and dashes (0x91-0x97) are cp1252 characters;
    latin-1 maps them to C1 control characters that tokenizers silently drop.
    """
    path = Path(path)
    handle = io.StringIO(_read_bytes(path).decode(encoding or "cp1252"), newline="")
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        raise CorpusFormatError(path, 1, "the file is empty", "a header 'Sentence #,Word,POS,Tag'")
    names = [h.strip().lower() for h in header]
    try:
        sent_col, word_col, tag_col = (
            names.index("sentence #"),
            names.index("word"),
            names.index("tag"),
        )
    except ValueError:
        raise CorpusFormatError(
            path, 1, f"header {header!r} lacks a needed column", "'Sentence #', 'Word' and 'Tag'"
        ) from None
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    current = None
    for row in reader:
        line = reader.line_num
        if len(row) != len(header):
            raise CorpusFormatError(
                path, line, f"{len(row)} columns", f"{len(header)} columns like the header"
            )
        if row[sent_col].strip():
            if words:
                sentences.append(Sentence(tuple(words), tuple(tags), current))
            current, words, tags = row[sent_col].strip(), [], []
        elif current is None:
            raise CorpusFormatError(
                path, line, "the first row has no 'Sentence #'", "'Sentence: 1'"
            )
        tag = row[tag_col].strip()
        if not check_tag(tag):
            raise CorpusFormatError(path, line, f"unknown tag {tag!r}", "O, B-TYPE or I-TYPE")
        words.append(row[word_col])
        tags.append(tag)
    if words:
        sentences.append(Sentence(tuple(words), tuple(tags), current))
    if not sentences:
        raise CorpusFormatError(path, None, "no sentences", "rows of 'Sentence #,Word,POS,Tag'")
    return sentences


def read_sentences(
    path: str | Path,
    format: str,
    encoding: str | None = None,
    token_column: int = 0,
    tag_column: int = -1,
) -> list[Sentence]:
    """Dispatch on ``format`` (conll, jsonl, gmb)."""
    if format == "conll":
        return read_conll_file(path, encoding, token_column, tag_column)
    if format == "jsonl":
        return read_jsonl_file(path, encoding)
    if format == "gmb":
        return read_gmb_file(path, encoding or "cp1252")
    raise DataError(f"unknown data.format {format!r}; expected one of {FORMATS}")

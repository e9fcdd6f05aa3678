"""File formats -> lists of :class:`Sentence` with the file's own tags (scheme untouched).

Every file, whatever its format, becomes lines through :func:`read_lines`, the one rule for
bytes, encodings and line endings, so no reader can drift from another. Every error names the
file, the line, what is wrong and what was expected, and is raised while reading, before any
training starts.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import gzip
import io
import itertools
import json
import logging
import re
import string
import sys
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from nerlit.data.schemes import check_tag, scheme_allows, split_tag
from nerlit.data.types import Sentence
from nerlit.data.words import split_words
from nerlit.errors import CorpusFormatError, DataError

log = logging.getLogger(__name__)

FILE_FORMATS = ("conll", "jsonl", "gmb")

#: UTF-32 before UTF-16: the UTF-32-LE mark begins with the UTF-16-LE one
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_GZIP_MAGIC = b"\x1f\x8b"
#: what undecided files are tried as, in order: cp1252 before latin-1, since latin-1 turns
#: Windows' curly quotes and dashes (0x91-0x97) into control characters tokenizers drop
_FALLBACKS = ("utf-8", "cp1252", "latin-1")
#: ASCII whitespace alone separates columns and makes a line blank: NBSP, U+0085 (a latin-1
#: 0x85) and U+2028 are characters of a word, though ``str.split()`` splits at them
_BLANK = string.whitespace
#: CoNLL-U's document marker, ``# newdoc`` or ``# newdoc id = ...``
_NEWDOC = re.compile(r"#\s*newdoc(\s|=|$)")
_COLUMN_SPACES = re.compile(f"[{re.escape(_BLANK)}]+")
#: ``\r\r\n`` first: a Windows file converted to Windows line ends once more (see read_lines)
_LINE_BREAK = re.compile(r"\r\r\n|\r\n|\r|\n")
#: bytes that are not UTF-8, as the ``surrogateescape`` error handler decodes them
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
#: a character that took more than one byte of valid UTF-8 (anything non-ASCII but an escape)
_MULTIBYTE_CHAR = re.compile("[^\x00-\x7f\udc80-\udcff]")
#: a byte order mark: at the start of a file it names the encoding; anywhere else it is the
#: start of a second file pasted on (``cat a.txt b.txt``), not text
_BOM_CHAR = "\ufeff"


def corpus_path(path: str | Path) -> Path:
    """``path`` with ``~`` expanded, or a one-line error naming the settings that name it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such corpus file. Check the data.*_file settings; the presets (data=gmb, "
            "data=conll2003) read under paths.data_dir: set NERLIT_DATA_DIR to the folder holding "
            "gmb/ and conll2003/"
        )
    return path


def _open_binary(path: Path) -> BinaryIO:
    """The file's bytes, gunzipped when it is gzip (by its name or by its magic number)."""
    with path.open("rb") as probe:
        magic = probe.read(len(_GZIP_MAGIC))
    if path.suffix == ".gz" or magic == _GZIP_MAGIC:
        return gzip.open(path)
    return path.open("rb")


def _family(codec: str) -> str:
    """``utf-16-le`` -> ``utf-16``: encodings one byte order mark can stand for."""
    name = codecs.lookup(codec).name
    return name[:6].rstrip("-") if name.startswith("utf") else name


def _chosen_codec(head: bytes, encoding: str | None, name: str) -> str | None:
    """A byte order mark decides the encoding: it is written by the program that wrote the file,
    while ``encoding`` may be a preset's guess (GMB's cp1252) for a file saved anew as UTF-8."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            family = _family(codec)
            if encoding is not None and _family(encoding) != family:
                log.warning(
                    "%s starts with a %s byte order mark: read as %s, not %s",
                    name,
                    family,
                    family,
                    encoding,
                )
            return codec
    return encoding


def _decodes(path: Path, codec: str) -> bool:
    """Whether the whole file decodes as ``codec``, read in blocks."""
    decoder = codecs.getincrementaldecoder(codec)()
    with _open_binary(path) as raw:
        try:
            while chunk := raw.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _fallback_codec(path: Path, name: str, option: str) -> str:
    """UTF-8 if the whole file decodes as UTF-8; else the first of :data:`_FALLBACKS` that does
    (latin-1 decodes any byte).

    A file that holds valid multi-byte UTF-8 characters *and* bytes that are not UTF-8 is no
    other encoding's file: it is UTF-8 with a stray byte (a line pasted from a cp1252 editor).
    Reading it all as cp1252 would turn every "Zürich" into "ZÃ¼rich" to save one byte, so it
    is an error naming the byte and its line instead.
    """
    if _decodes(path, "utf-8"):
        return "utf-8"
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    bad, multibyte = 0, False
    with _open_binary(path) as raw:
        while True:
            chunk = raw.read(1 << 20)
            text = decoder.decode(chunk, final=not chunk)
            bad += len(_ESCAPED_BYTE.findall(text))
            multibyte = multibyte or bool(_MULTIBYTE_CHAR.search(text))
            if not chunk:
                break
    if multibyte:
        raise _stray_bytes(path, name, option, bad)
    codec = next((c for c in _FALLBACKS[1:-1] if _decodes(path, c)), _FALLBACKS[-1])
    with _open_binary(path) as raw:
        line, _, byte, _ = _first_bad_byte(raw.read(), "utf-8") or (0, 0, 0, "")
    log.warning(
        "%s is not UTF-8 (byte 0x%02x at line %d%s) and holds no UTF-8 character: reading it "
        "as %s (set %s)",
        name,
        byte,
        line,
        f", and {bad - 1} more" if bad > 1 else "",
        codec,
        option,
    )
    return codec


def _first_bad_byte(data: bytes, codec: str) -> tuple[int, int, int, str] | None:
    """(line, column, byte, reason) of the first byte of ``data`` that ``codec`` cannot decode,
    lines counted by :data:`_LINE_BREAK`, the rule :func:`read_lines` splits by."""
    try:
        data.decode(codec)
    except UnicodeDecodeError as error:
        before = _LINE_BREAK.split(data[: error.start].decode(codec, errors="replace"))
        return len(before), len(before[-1]) + 1, data[error.start], error.reason
    return None


def _stray_bytes(path: Path, name: str, option: str, bad: int) -> CorpusFormatError:
    """The error for a UTF-8 file with ``bad`` bytes that are not UTF-8 (see _fallback_codec)."""
    with _open_binary(path) as raw:
        data = raw.read()
    line, column, byte, _ = _first_bad_byte(data, "utf-8") or (None, 0, 0, "")
    example = _MULTIBYTE_CHAR.search(data.decode("utf-8", errors="surrogateescape"))
    as_cp1252 = bytes([byte]).decode("cp1252", errors="replace")
    reads = f", {as_cp1252!r} in cp1252" if as_cp1252 != "\ufffd" else ""
    others = f", and {bad - 1} more bytes that are not UTF-8" if bad > 1 else ""
    return CorpusFormatError(
        name,
        line,
        f"byte 0x{byte:02x} at column {column} is not UTF-8{reads}, though the rest of the file "
        f"is UTF-8 (it holds characters such as {example.group() if example else ''!r}){others}",
        "one encoding per file: fix the byte (save the line as UTF-8), or set "
        f"{option}=cp1252 if the whole file is cp1252",
    )


def _undecodable(
    path: Path | None, name: str, codec: str, option: str, after: int
) -> CorpusFormatError:
    """The line, column and byte of the first byte ``codec`` cannot decode, found by reading the
    file again: a decoder reads ahead in blocks, so the line being read is not where it failed.
    A stream cannot be read again: it gets the line after the last one read, "or later"."""
    expected = (
        f"text in {codec}; set {option} to the file's encoding ({option}=latin-1 reads any byte)"
    )
    if path is not None:
        with _open_binary(path) as raw:
            found = _first_bad_byte(raw.read(), codec)
        if found is not None:
            line, column, byte, reason = found
            problem = f"byte 0x{byte:02x} at column {column} is not {codec} ({reason})"
            return CorpusFormatError(name, line, problem, expected)
    return CorpusFormatError(name, None, f"not {codec} text at line {after + 1} or later", expected)


def _refuse_line(line: str, name: str, number: int, option: str) -> None:
    """The error for a line with a character no line of text holds: NUL (UTF-16 or UTF-32 read
    without its byte order mark) or a byte order mark after the file's start (two files
    concatenated)."""
    if "\x00" in line:
        raise CorpusFormatError(
            name,
            number,
            "NUL characters: the file looks like UTF-16 or UTF-32 without a byte order mark",
            f"text without NUL characters; for UTF-16 or UTF-32 set "
            f"{option}=utf-16-le (or utf-16-be, utf-32-le, utf-32-be)",
        )
    if _BOM_CHAR in line:
        raise CorpusFormatError(
            name,
            number,
            f"a byte order mark (U+FEFF) inside the file, at column {line.index(_BOM_CHAR) + 1} "
            "(two files concatenated?)",
            "a byte order mark only at the very start of a file; remove it",
        )


def read_lines(
    source: str | Path | BinaryIO, encoding: str | None = None, option: str = "data.encoding"
) -> Iterator[tuple[int, str]]:
    """(line number, text without its ending) of a text file: the one rule every reader uses.

    - Bytes are decoded before they are split, so UTF-16 and UTF-32 split where their own line
      breaks are. A byte order mark (UTF-8, UTF-16, UTF-32) picks the encoding and is not text.
    - ``encoding=None``: UTF-8; a file that is not valid UTF-8 is read as cp1252, or as latin-1
      where cp1252 leaves a byte undefined (logged), unless it is UTF-8 but for a few bytes (an
      error naming the first, see :func:`_fallback_codec`). An encoding that fails names the
      line, the column and the byte, and ``option``, the setting that fixes it.
    - Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (old Mac files), and nowhere else: U+2028,
      U+0085 and the other characters ``str.splitlines()`` breaks at are text (cp1252's 0x85 is
      an ellipsis). A final line break ends the last line; it starts no empty one.
      ``\\r\\r\\n`` is one line end (logged with its count): a Windows file converted to Windows
      line ends a second time, each of whose lines would otherwise be followed by a blank one
      that ends every sentence after its first word.
    - Gzip is read by a ``.gz`` name or the gzip magic number; a broken one is named.
    - A NUL character (UTF-16 or UTF-32 without a byte order mark) or a byte order mark after
      the file's start (two files concatenated) stops the read, naming the line.

    ``source``: a path (``~`` expanded), or a binary stream such as ``sys.stdin.buffer``, read
    once and left open (``encoding=None`` then means UTF-8).
    """
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise DataError(
                f"{option}={encoding!r} is not an encoding Python knows; expected one such as "
                "utf-8, cp1252, latin-1 or utf-16"
            ) from None
    if isinstance(source, (str, Path)):
        path: Path | None = Path(source).expanduser()
        name = str(source)
        opened = _open_binary(path)
    else:
        path, name = None, str(getattr(source, "name", "<stream>"))
        if not hasattr(source, "peek"):
            source = io.BufferedReader(source)
        opened = contextlib.nullcontext(source)
    number, codec = 0, "utf-8"
    try:
        with opened as raw:
            codec = _chosen_codec(raw.peek(4)[:4], encoding, name) or (
                _fallback_codec(path, name, option) if path is not None else "utf-8"
            )
            text = io.TextIOWrapper(raw, encoding=codec, newline="")
            doubled, lone_cr = 0, False
            try:
                for raw_line in text:
                    if lone_cr and raw_line == "\r\n":  # the rest of a \r\r\n line end
                        doubled, lone_cr = doubled + 1, False
                        continue
                    lone_cr = raw_line.endswith("\r")
                    number += 1
                    line = raw_line.rstrip("\r\n")
                    if "\x00" in line or _BOM_CHAR in line:
                        _refuse_line(line, name, number, option)
                    yield number, line
            finally:
                if path is None:
                    text.detach()  # the stream is the caller's to close
                else:
                    text.close()
            if doubled:
                log.warning(
                    "%s: %d lines end in \\r\\r\\n (a Windows file converted to Windows line "
                    "ends again); each is read as one line end",
                    name,
                    doubled,
                )
    except UnicodeDecodeError:
        raise _undecodable(path, name, codec, option, number) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise CorpusFormatError(
            name,
            None,
            f"not a readable gzip file ({error})",
            "a complete gzip file, or a name without .gz for plain text",
        ) from None


@functools.lru_cache(maxsize=4096)
def _tag_fits(tag: str, scheme: str) -> tuple[bool, bool]:
    """(a valid tag, one ``scheme`` can hold): cached, since a corpus of a million words has a
    few dozen distinct tags."""
    return check_tag(tag), scheme_allows(tag, scheme)


def _check_tag(
    tag: object,
    scheme: str,
    path: str | Path,
    number: int,
    expected: str = "O or B-/I-/E-/S- followed by a type",
) -> str:
    """``tag`` if it is a tag the configured scheme can hold; else a one-line error.

    An explicit IOB scheme meeting E-/S- tags is the file's scheme, not a typo: the message says
    to let nerlit detect it rather than to drop the tags.
    """
    valid, fits = _tag_fits(tag, scheme) if isinstance(tag, str) else (False, False)
    if not valid:
        raise CorpusFormatError(path, number, f"unknown tag {tag!r}", expected)
    if not fits:
        raise CorpusFormatError(
            path,
            number,
            f"tag {tag!r} is not {scheme.upper()} (data.scheme={scheme} allows only O, B- and I-)",
            "data.scheme=auto, which detects each file's scheme, or data.scheme=bioes for a "
            "file with E-/S- tags",
        )
    return str(tag)


# --- CoNLL ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConllBlock:
    """Consecutive lines of a CoNLL file: a sentence's word lines with their ``columns``, or one
    line that holds no word (blank, a ``-DOCSTART-`` marker or a ``#`` comment) with none."""

    start: int  # the first line's number
    lines: list[str]
    columns: list[list[str]]
    document: str | None


def conll_columns(line: str) -> list[str]:
    """A line's columns: tab-separated if it holds a tab (a token may then contain spaces), else
    separated by runs of spaces; ``[]`` for a blank line.

    Only ASCII whitespace separates (see :data:`_BLANK`), and trailing whitespace makes no empty
    last column: a stray tab at the end of a line must not become the tag.
    """
    text = line.rstrip(_BLANK)
    if not text:
        return []
    if "\t" in text:
        return [field.strip(_BLANK) for field in text.split("\t")]
    return _COLUMN_SPACES.split(text.lstrip(_BLANK))


def _is_comment(
    fields: list[str],
    reference: list[str] | None,
    tag_column: int | None,
    nearby: list[str] | None = None,
) -> bool:
    """Whether a ``#`` line before a sentence's first word is a comment (CoNLL-U's
    ``# sent_id = 1``) rather than the word ``#``: it is a word line when it has as many columns
    as that first word line (``reference``) and, where the tag column is known, a valid tag.

    Without a tag column (``nerlit predict``'s input, which may have no tags) a sentence of
    ``#`` lines alone (``#``, ``#hashtag``) is compared with ``nearby``, the file's nearest word
    line, so that words stay words; where that line ends in a tag (a gold file), so must a word
    line. With no word line in the whole file, one column is a word and more are a comment.
    """
    if reference is not None and len(fields) != len(reference):
        return True
    if tag_column is not None:
        if not -len(fields) <= tag_column < len(fields):
            return True
        return not check_tag(fields[tag_column])
    reference = reference or nearby
    if reference is None:
        return len(fields) > 1
    if len(fields) != len(reference):
        return True
    return len(reference) > 1 and check_tag(reference[-1]) and not check_tag(fields[-1])


def _settle(
    pending: list[tuple[int, str, list[str]]],
    reference: list[str] | None,
    tag_column: int | None,
    document: str | None,
    name: str,
    nearby: list[str] | None,
) -> Generator[ConllBlock, None, tuple[int, list[str], list[list[str]], str | None]]:
    """Yield the leading comments of ``pending`` ``#`` lines as blocks; return the rest, which
    from the first word line on are words of the sentence, as (start, lines, columns), and the
    document then open (a ``# newdoc`` comment among them starts one)."""
    while pending and _is_comment(pending[0][2], reference, tag_column, nearby):
        number, line, _ = pending.pop(0)
        if _NEWDOC.match(line):
            document = f"{name}:{number}"
        yield ConllBlock(number, [line], [], document)
    rest = (pending[0][0] if pending else 0), [p[1] for p in pending], [p[2] for p in pending]
    return (*rest, document)


def conll_blocks(
    lines: Iterable[tuple[int, str]], name: str, tag_column: int | None = None
) -> Iterator[ConllBlock]:
    """(line number, text) lines -> blocks; a whitespace-only line ends a sentence.

    Columns as :func:`conll_columns` splits them. ``-DOCSTART-`` lines (CoNLL-2003) and
    ``# newdoc`` comments (CoNLL-U's ``# newdoc id = ...``) are document markers, not words: each
    starts a document named ``name:line``, which the blocks after it carry (document context).
    Blocks before the first marker (all of them in a file without one) have no document, since
    where their documents begin and end is unknown. ``#`` lines before a
    sentence's first word are comments or words as :func:`_is_comment` decides (``tag_column``:
    where a tag is, when the lines have one). Without one, the lines before the file's first
    word line that does not start with ``#`` are held until it is read, to compare with it.
    """
    lines = iter(lines)
    nearby: list[str] | None = None  # the last word line read, or the first one to come
    head: list[tuple[int, str]] = []
    if tag_column is None:
        for number, line in lines:
            head.append((number, line))
            fields = conll_columns(line)
            if fields and fields[0] != "-DOCSTART-" and not fields[0].startswith("#"):
                nearby = fields
                break
    document: str | None = None
    start, block, columns = 0, [], []
    pending: list[tuple[int, str, list[str]]] = []  # '#' lines before a first word, undecided
    for number, line in itertools.chain(head, lines):
        fields = conll_columns(line)
        is_word = bool(fields) and fields[0] != "-DOCSTART-"
        if is_word and not block and fields[0].startswith("#"):
            pending.append((number, line, fields))
            continue
        if pending:
            reference = fields if is_word else None
            settled = yield from _settle(pending, reference, tag_column, document, name, nearby)
            start, block, columns, document = settled
            pending = []
        if is_word:
            start = start if block else number
            block.append(line)
            columns.append(fields)
            nearby = fields
            continue
        if block:  # a marker right after a word line still ends that sentence
            yield ConllBlock(start, block, columns, document)
            block, columns = [], []
        if fields:
            document = f"{name}:{number}"
        yield ConllBlock(number, [line], [], document)
    if pending:
        start, block, columns, document = yield from _settle(
            pending, None, tag_column, document, name, nearby
        )
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


def conll_word(fields: list[str], column: int, path: str | Path, number: int) -> str:
    """The word in ``column``, which must hold one: a tab-separated line can leave it empty
    (``\tB-PER``), and an empty word would be trained on, or tagged, as if it were one."""
    word = conll_field(fields, column, path, number)
    if not word:
        raise CorpusFormatError(
            path,
            number,
            f"the token (column {column}) is empty",
            "a token with a character other than whitespace in every word line; give the "
            "word, or delete the line",
        )
    return word


def _check_columns(
    fields: list[str], token_column: int, tag_column: int, path: Path, number: int
) -> None:
    """The token and tag columns must be two columns of the file's first word line: one column
    named by both (``data.token_column=1`` on a two-column file) would train on tags as words."""
    n = len(fields)
    if -n <= token_column < n and -n <= tag_column < n and token_column % n == tag_column % n:
        raise CorpusFormatError(
            path,
            number,
            f"data.token_column={token_column} and data.tag_column={tag_column} are the same "
            f"column (column {token_column % n} of the file's {n} columns, counted from 0)",
            "two different columns: set data.token_column to the words' column and "
            "data.tag_column to the tags'",
        )


def read_conll_file(
    path: str | Path,
    encoding: str | None = None,
    token_column: int = 0,
    tag_column: int = -1,
    scheme: str = "auto",
) -> list[Sentence]:
    """CoNLL-style columns, one word per line (see :func:`conll_blocks`), with a tag column."""
    return list(iter_conll_file(corpus_path(path), encoding, token_column, tag_column, scheme))


def iter_conll_file(
    path: Path,
    encoding: str | None = None,
    token_column: int = 0,
    tag_column: int = -1,
    scheme: str = "auto",
) -> Iterator[Sentence]:
    """:func:`read_conll_file`'s sentences one at a time, every check made as each is read."""
    sentences = 0
    n_cols = None
    for block in conll_blocks(read_lines(path, encoding), path.name, tag_column):
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
            if not sentences and not words:  # the file's first word line
                _check_columns(fields, token_column, tag_column, path, number)
            tags.append(
                _check_tag(conll_field(fields, tag_column, path, number), scheme, path, number)
            )
            words.append(conll_word(fields, token_column, path, number))
        if words:
            sentences += 1
            yield Sentence(tuple(words), tuple(tags), f"{path.name}:{block.start}", block.document)
    if not sentences:
        raise CorpusFormatError(path, None, "the file holds no sentences", "CoNLL column lines")


# --- JSONL ---------------------------------------------------------------------------------------

_JSONL_FORMS = (
    '{"tokens": [...], "tags": [...]} or {"text": "...", "entities": '
    '[{"start": int, "end": int, "label": "TYPE"}]}'
)
#: the keys of each form of a record; a record holding both forms' keys is ambiguous
_FORM_KEYS = {"tokens": ("tokens", "tags"), "text": ("text", "entities")}


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def _is_offset(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: a lone UTF-16 surrogate, which JSON can write (``"\\ud800"``) but which is no character:
#: no tokenizer can encode it and no UTF-8 file can hold it
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_PROBLEM = "a lone surrogate (a \\ud800-\\udfff escape without its pair)"
_SURROGATE_FIX = (
    "valid Unicode: a character beyond U+FFFF is a pair of escapes (\\ud83d\\ude00 for an "
    "emoji), never one alone; fix the program that wrote the file"
)


def _token_problem(token: str) -> tuple[str, str] | None:
    """(what, expected) that makes a non-blank ``token`` unusable as a word, if anything. Every
    word is written back one per line (a run's ``predictions.conll``), so a line break in it
    would split it, and ``-DOCSTART-`` there is CoNLL's document marker, which ends the
    sentence when read back."""
    if "\n" in token or "\r" in token:
        return (
            "a line break (\\n or \\r) inside a token",
            "tokens without line breaks: split the token there, or remove the break",
        )
    if token == "-DOCSTART-":
        return (
            "'-DOCSTART-' is CoNLL's document marker, not a word",
            'the marker out of the tokens; a record\'s "document" key names its document',
        )
    if _SURROGATE.search(token):
        return _SURROGATE_PROBLEM, _SURROGATE_FIX
    return None


def _label_problem(label: object) -> str | None:
    """What is wrong with an entity's ``label`` as an entity type, if anything: it becomes the
    tags ``B-label``/``I-label``, so it must be a non-empty word that is not itself a tag."""
    if not isinstance(label, str) or not label:
        return f"'label' must be an entity type (a non-empty string), got {label!r}"
    if _SURROGATE.search(label):
        return f"'label' {label!r} holds {_SURROGATE_PROBLEM}"
    if label.split() != [label]:
        return f"'label' {label!r} holds whitespace; an entity type is one word"
    if label == "O":
        return "'label' 'O' is the tag of no entity; give the entity's type"
    if check_tag(label):
        return f"'label' {label!r} is a tag, not a type: give {split_tag(label)[1]!r}"
    return None


def _entity_tags(
    text: str, entities: list, fail: Callable[[str], CorpusFormatError]
) -> tuple[list[str], list[str]]:
    """Words of ``text`` (:func:`split_words`) and IOB2 tags from character-offset entities."""
    spans = split_words(text)
    starts = {s: i for i, (_, s, _) in enumerate(spans)}
    ends = {e: i for i, (_, _, e) in enumerate(spans)}
    tags = ["O"] * len(spans)
    for index, entity in enumerate(entities, start=1):
        if not isinstance(entity, dict):
            raise fail(f"entity {index} must be an object, got {entity!r}")
        for key in ("start", "end", "label"):
            if key not in entity:
                raise fail(f"entity {index} lacks {key!r}")
        start, end, label = entity["start"], entity["end"], entity["label"]
        for key, value in (("start", start), ("end", end)):
            if not _is_offset(value):
                raise fail(
                    f"entity {index}: {key!r} must be an integer character offset, got {value!r}"
                )
        if problem := _label_problem(label):
            raise fail(f"entity {index}: {problem}")
        where = f"entity {index} [{start}, {end})"
        if end < start:
            raise fail(f"{where} ends before it starts")
        if end == start:
            raise fail(f"{where} is empty (start == end)")
        if start < 0 or end > len(text):
            raise fail(f"{where} falls outside the text of {len(text)} characters")
        if start not in starts or end not in ends:
            cut = next((w for w, s, e in spans if s < start < e or s < end < e), text[start:end])
            raise fail(
                f"{where} {text[start:end]!r} cuts the word {cut!r}; entity offsets must fall on "
                "word boundaries (see nerlit.data.words)"
            )
        first, last = starts[start], ends[end]
        if any(t != "O" for t in tags[first : last + 1]):
            raise fail(f"{where} overlaps another entity")
        tags[first : last + 1] = [f"B-{label}"] + [f"I-{label}"] * (last - first)
    return [w for w, _, _ in spans], tags


def check_tagged_words(
    words: Sequence[object],
    tags: Sequence[object],
    scheme: str,
    path: str | Path,
    number: int | None,
    fail: Callable[..., CorpusFormatError],
) -> None:
    """The checks every pre-split sentence passes, whoever wrote it (a JSONL record, a row of a
    Hugging Face dataset): what a column file's lines cannot hold (an empty or blank token, a
    line break or a lone surrogate in one, a tag of no scheme) is refused here, not trained on.
    ``fail(problem, expected=...)`` makes the reader's error, naming its place."""
    for index, word in enumerate(words, start=1):
        if not isinstance(word, str) or not word.strip(_BLANK):
            raise fail(
                f"token {index} is {word!r}: tokens must be strings with a character other "
                "than whitespace"
            )
        if problem := _token_problem(word):
            raise fail(f"token {index} is {word!r}: {problem[0]}", problem[1])
    for tag in tags:
        _check_tag(tag, scheme, path, number)
        if isinstance(tag, str) and _SURROGATE.search(tag):
            raise fail(f"tag {tag!r} holds {_SURROGATE_PROBLEM}", _SURROGATE_FIX)


def _jsonl_sentence(path: Path, number: int, record: object, scheme: str) -> Sentence:
    """One record, every value checked: whatever is not used as written is an error."""

    def fail(problem: str, expected: str = _JSONL_FORMS) -> CorpusFormatError:
        return CorpusFormatError(path, number, problem, expected)

    if not isinstance(record, dict):
        raise fail(f"the line is a JSON {_JSON_KINDS.get(type(record), 'value')}, not an object")
    forms = [form for form in _FORM_KEYS if form in record]
    if len(forms) != 1:
        raise fail(
            "the record has both 'tokens' and 'text'; give one"
            if forms
            else "the record has neither 'tokens' nor 'text'"
        )
    (form,) = forms
    for other, keys in _FORM_KEYS.items():
        for key in keys:
            if other != form and key in record:
                raise fail(f"{key!r} belongs with {other!r}, not with {form!r}")
    document = record.get("document")
    if isinstance(document, bool) or not isinstance(document, (str, int, type(None))):
        raise fail(f"'document' must be a string or an integer, got {document!r}")
    if isinstance(document, str) and _SURROGATE.search(document):
        raise fail(f"'document' holds {_SURROGATE_PROBLEM}", _SURROGATE_FIX)
    document = None if document is None else str(document)
    if form == "tokens":
        words, tags = record["tokens"], record.get("tags")
        if not isinstance(words, list) or not isinstance(tags, list) or len(words) != len(tags):
            raise fail("'tokens' and 'tags' must be lists of the same length")
        check_tagged_words(words, tags, scheme, path, number, fail)
    else:
        text, entities = record["text"], record.get("entities", [])
        if not isinstance(text, str) or not isinstance(entities, list):
            raise fail("'text' must be a string and 'entities' a list")
        if found := _SURROGATE.search(text):
            raise fail(
                f"'text' holds {_SURROGATE_PROBLEM} at character {found.start()}", _SURROGATE_FIX
            )
        words, tags = _entity_tags(text, entities, fail)  # B-/I- of checked types: any scheme
    return Sentence(tuple(words), tuple(tags), f"{path.name}:{number}", document)


class DuplicateKeyError(ValueError):
    """A JSON object that names a key twice."""


class JsonLimitError(ValueError):
    """JSON that is valid but beyond what Python reads: nested too deeply for its recursion
    limit, or an integer of more digits than ``sys.get_int_max_str_digits()``."""


def _json_int(digits: str) -> int:
    """``int``, with the too-many-digits error a :class:`JsonLimitError` that says so plainly
    (Python's own points at ``sys.set_int_max_str_digits``, no fix for a data file)."""
    try:
        return int(digits)
    except ValueError:
        raise JsonLimitError(
            f"an integer of {len(digits.lstrip('-'))} digits, more than Python reads "
            f"({sys.get_int_max_str_digits()})"
        ) from None


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    found: dict = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKeyError(f"key {key!r} appears twice in one object")
        found[key] = value
    return found


def load_json(text: str | bytes) -> object:
    """``json.loads``, refusing an object with a repeated key (``{"tags": [...], "tags": [...]}``):
    the json module keeps the last value and drops the other without a word, and which one the
    writer meant is unknowable. Raises :class:`DuplicateKeyError` (a ``ValueError``), and
    :class:`JsonLimitError` (also one) where Python's json would raise ``RecursionError``, which
    is no ``ValueError`` and would escape every caller's handling of bad JSON."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_int=_json_int)
    except RecursionError:
        raise JsonLimitError(
            f"arrays or objects nested more deeply than Python reads (about "
            f"{sys.getrecursionlimit()} levels)"
        ) from None


def read_jsonl_file(
    path: str | Path, encoding: str | None = None, scheme: str = "auto"
) -> list[Sentence]:
    """One JSON object per line: pre-split tokens with tags, or text with character offsets.

    An optional ``"document"`` key names the record's document (for document context); other
    keys (an ``"id"``...) are the user's own and ignored.
    """
    return list(iter_jsonl_file(corpus_path(path), encoding, scheme))


def iter_jsonl_file(
    path: Path, encoding: str | None = None, scheme: str = "auto"
) -> Iterator[Sentence]:
    """:func:`read_jsonl_file`'s sentences one at a time, every check made as each is read."""
    sentences = 0
    for number, line in read_lines(path, encoding):
        if not line.strip(_BLANK):
            continue
        try:
            record = load_json(line)
        except json.JSONDecodeError as error:
            raise CorpusFormatError(
                path,
                number,
                f"not valid JSON ({error.msg} at column {error.colno})",
                "one JSON object per line",
            ) from None
        except DuplicateKeyError as error:
            raise CorpusFormatError(
                path, number, str(error), "give each key once per object"
            ) from None
        except JsonLimitError as error:
            raise CorpusFormatError(
                path, number, f"JSON with {error}", f"one JSON object per line: {_JSONL_FORMS}"
            ) from None
        sentences += 1
        yield _jsonl_sentence(path, number, record, scheme)
    if not sentences:
        raise CorpusFormatError(
            path, None, "the file holds no sentences", "one JSON object per line"
        )


# --- GMB CSV -------------------------------------------------------------------------------------


def read_gmb_file(
    path: str | Path, encoding: str | None = "cp1252", scheme: str = "auto"
) -> list[Sentence]:
    """The GMB/Kaggle CSV: ``Sentence #`` is filled on a sentence's first row only.

    cp1252, not latin-1: the file's curly quotes and dashes (0x91-0x97) are cp1252 characters;
    latin-1 maps them to C1 control characters that tokenizers silently drop. Rows are read from
    :func:`read_lines`, so ``reader.line_num`` is the file's line number; a quoted cell that
    spans lines would lose its line break, so it is an error.
    """
    return list(iter_gmb_file(corpus_path(path), encoding, scheme))


def iter_gmb_file(
    path: Path, encoding: str | None = "cp1252", scheme: str = "auto"
) -> Iterator[Sentence]:
    """:func:`read_gmb_file`'s sentences one at a time, every check made as each is read."""
    reader = csv.reader(text for _, text in read_lines(path, encoding or "cp1252"))
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
    sentences = 0
    words: list[str] = []
    tags: list[str] = []
    current = None
    line = reader.line_num
    for row in reader:
        first, line = line + 1, reader.line_num
        if line != first:
            raise CorpusFormatError(
                path, first, "a quoted cell holds a line break", "one row per line"
            )
        if len(row) != len(header):
            raise CorpusFormatError(
                path, line, f"{len(row)} columns", f"{len(header)} columns like the header"
            )
        if row[sent_col].strip():
            if words:
                sentences += 1
                yield Sentence(tuple(words), tuple(tags), current)
            current, words, tags = row[sent_col].strip(), [], []
        elif current is None:
            raise CorpusFormatError(
                path, line, "the first row has no 'Sentence #'", "'Sentence: 1'"
            )
        tags.append(_check_tag(row[tag_col].strip(), scheme, path, line, "O, B-TYPE or I-TYPE"))
        if not row[word_col].strip(_BLANK):
            raise CorpusFormatError(
                path,
                line,
                f"the 'Word' cell is {row[word_col]!r}",
                "a word with a character other than whitespace in every row; give the word, "
                "or delete the row",
            )
        words.append(row[word_col])
    if words:
        sentences += 1
        yield Sentence(tuple(words), tuple(tags), current)
    if not sentences:
        raise CorpusFormatError(path, None, "no sentences", "rows of 'Sentence #,Word,POS,Tag'")


def conll_column_problem(key: str, column: object) -> str | None:
    """What is wrong with ``data.<key>`` as a CoNLL column, in words (None: nothing)."""
    if _is_offset(column):
        return None
    return (
        f"data.{key}={column}: a CoNLL file's columns are numbered (0: the first, -1: the "
        f"last); a column's name is for data.format=datasets"
    )


def read_sentences(
    path: str | Path,
    format: str,
    encoding: str | None = None,
    token_column: int = 0,
    tag_column: int = -1,
    scheme: str = "auto",
) -> list[Sentence]:
    """Dispatch on ``format`` (conll, jsonl, gmb). ``scheme`` other than ``auto`` is checked
    against every tag as it is read, so a contradiction names its line."""
    return list(iter_sentences(path, format, encoding, token_column, tag_column, scheme))


def iter_sentences(
    path: str | Path,
    format: str,
    encoding: str | None = None,
    token_column: int = 0,
    tag_column: int = -1,
    scheme: str = "auto",
) -> Iterator[Sentence]:
    """:func:`read_sentences` one sentence at a time (the file read as they are taken), for
    whatever need not hold the corpus (``nerlit stats``). A missing file or an unknown format
    is refused here, before the first sentence is asked for."""
    if format not in FILE_FORMATS:
        raise DataError(f"unknown data.format {format!r}; expected one of {FILE_FORMATS}")
    path = corpus_path(path)
    if format == "conll":
        for key, column in (("token_column", token_column), ("tag_column", tag_column)):
            problem = conll_column_problem(key, column)
            if problem:
                raise DataError(problem)
        return iter_conll_file(path, encoding, token_column, tag_column, scheme)
    if format == "jsonl":
        return iter_jsonl_file(path, encoding, scheme)
    return iter_gmb_file(path, encoding or "cp1252", scheme)

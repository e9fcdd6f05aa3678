"""Files in, tagged files out: text lines -> JSONL or HTML, CoNLL columns -> CoNLL + a tag column.

Input is read and tagged in chunks, so a file of any size streams through in bounded memory while
each chunk is still big enough for length-sorted batching to pay off. CoNLL input with
``-DOCSTART-`` lines is tagged with its documents (document context, for models trained with it),
and its chunks end at document boundaries where they can.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from nerlit.errors import DataError
from nerlit.inference.html import render_html
from nerlit.inference.loading import OptionError
from nerlit.inference.spans import Entity
from nerlit.inference.tagger import Tagger

FORMATS = ("jsonl", "conll", "html")
ENTITY_FIELDS = ("text", "label", "start", "end", "score")


@dataclass
class PredictSummary:
    texts: int = 0
    words: int = 0
    entities: int = 0


def entity_json(entity: Entity) -> dict:
    return {k: getattr(entity, k) for k in ENTITY_FIELDS}


@contextlib.contextmanager
def _open(path: str | Path, mode: str, encoding: str) -> Iterator[TextIO]:
    if str(path) == "-":
        stream = sys.stdin if "r" in mode else sys.stdout
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding=encoding)
        yield stream
        return
    path = Path(path)
    if "r" in mode and not path.is_file():
        raise FileNotFoundError(f"{path}: no such input file (input=FILE, or input=- for stdin)")
    if "w" in mode:
        path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode, encoding=encoding, newline="" if "r" in mode else None) as handle:
        yield handle


def _lines(handle: TextIO, name: str) -> Iterator[str]:
    """Lines without their ending (\\n, \\r\\n or \\r); U+2028 and U+0085 stay inside a line."""
    number = 0
    try:
        for number, line in enumerate(handle, start=1):  # noqa: B007 - read in the except
            yield line[:-1] if line.endswith("\n") else line
    except UnicodeDecodeError as error:
        raise DataError(
            f"{name}, near line {number + 1}: not {handle.encoding} text ({error.reason}). "
            f"Convert the file, or pass its encoding (encoding=latin-1, cp1252, ...)."
        ) from None


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _conll_blocks(lines: Iterator[str]) -> Iterator[list[str]]:
    """Sentences as their raw lines; blank and ``-DOCSTART-`` lines come alone, as [line]."""
    block: list[str] = []
    for line in lines:
        stripped = line.rstrip("\r")
        if not stripped.strip() or _is_docstart(stripped):
            if block:
                yield block
                block = []
            yield [stripped]
        else:
            block.append(stripped)
    if block:
        yield block


def _is_docstart(line: str) -> bool:
    return line.split()[:1] == ["-DOCSTART-"]


def _is_sentence(block: list[str]) -> bool:
    return bool(block[0].strip()) and not _is_docstart(block[0])


def _with_documents(blocks: Iterator[list[str]]) -> Iterator[tuple[list[str], str | None]]:
    """Each block with its document: a number counting ``-DOCSTART-`` lines, None before one."""
    document = None
    for number, block in enumerate(blocks):
        if _is_docstart(block[0]):
            document = str(number)
        yield block, document


def _document_chunks(
    blocks: Iterator[tuple[list[str], str | None]], size: int
) -> Iterator[list[tuple[list[str], str | None]]]:
    """Chunks of ``size`` blocks or more that end where a document does, when there are documents.

    Context never crosses chunks, so a document cut in two would lose some at the cut; one longer
    than ``2 * size`` blocks is cut all the same, to keep memory bounded.
    """
    chunk: list[tuple[list[str], str | None]] = []
    for block, document in blocks:
        if len(chunk) >= max(size, 1):
            at_boundary = document is None or document != chunk[-1][1]
            if at_boundary or len(chunk) >= 2 * size:
                yield chunk
                chunk = []
        chunk.append((block, document))
    if chunk:
        yield chunk


def _json_line(record: dict) -> str:
    """Raw UTF-8 JSON, but with the line separators that ``str.splitlines`` honours escaped."""
    line = json.dumps(record, ensure_ascii=False)
    for char in ("\x85", "\u2028", "\u2029"):
        line = line.replace(char, f"\\u{ord(char):04x}")
    return line + "\n"


def _count_lines(path: str | Path) -> int | None:
    if str(path) == "-" or not Path(path).is_file():
        return None
    with open(path, "rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("tagging"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("lines"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def predict_file(
    tagger: Tagger,
    input: str | Path,
    output: str | Path,
    format: str = "jsonl",
    chunk_size: int = 2048,
    progress: bool | None = None,
    encoding: str = "utf-8",
) -> PredictSummary:
    """Tag every text of ``input`` into ``output`` (``-`` is stdin/stdout); see the module doc.

    ``encoding`` is the input's; output is always UTF-8. ``progress=None`` shows a bar (on
    stderr) when the input has more lines than one chunk.
    """
    if format not in FORMATS:
        raise OptionError(f"format={format!r} is not one of {FORMATS}")
    total = _count_lines(input)
    if progress is None:
        progress = total is None or total > chunk_size
    summary = PredictSummary()
    with (
        _open(input, "r", encoding) as source,
        _open(output, "w", "utf-8") as sink,
        _progress(progress) as bar,
    ):
        task = bar.add_task("tagging", total=total)
        if format == "conll":
            blocks = _with_documents(_conll_blocks(_lines(source, str(input))))
            for chunk in _document_chunks(blocks, chunk_size):
                _write_conll(tagger, chunk, sink, summary)
                bar.advance(task, sum(len(b) for b, _ in chunk))
            return summary
        documents = []
        for chunk in _chunks(_lines(source, str(input)), chunk_size):
            texts = [line.rstrip("\r") for line in chunk]
            entities = tagger.predict(texts)
            summary.texts += len(texts)
            summary.entities += sum(map(len, entities))
            if format == "jsonl":
                for text, found in zip(texts, entities):
                    record = {"text": text, "entities": [entity_json(e) for e in found]}
                    sink.write(_json_line(record))
            else:
                documents.extend(zip(texts, entities))
            bar.advance(task, len(chunk))
        if format == "html":
            sink.write(render_html(documents, title=f"nerlit: {Path(str(input)).name}"))
    return summary


def _write_conll(
    tagger: Tagger, blocks: Sequence[tuple[list[str], str | None]], sink: TextIO, summary
) -> None:
    """Each word line gets the predicted tag as a new last column, in the line's own separator."""
    sentences = [(b, document) for b, document in blocks if _is_sentence(b)]
    words = [[line.split()[0] for line in b] for b, _ in sentences]
    tags = iter(tagger.predict_tags(words, [document for _, document in sentences]))
    for block, _ in blocks:
        if not _is_sentence(block):
            sink.write(block[0] + "\n")
            continue
        predicted = next(tags)
        summary.texts += 1
        summary.words += len(block)
        summary.entities += sum(t.startswith("B-") for t in predicted)
        for line, tag in zip(block, predicted):
            separator = "\t" if "\t" in line else " "
            sink.write(f"{line}{separator}{tag}\n")

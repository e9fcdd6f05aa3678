"""Files in, tagged files out: text lines -> JSONL or HTML, CoNLL columns -> CoNLL + a tag column.

Input is read and tagged in chunks, so a file of any size streams through in bounded memory while
each chunk is still big enough for length-sorted batching to pay off. CoNLL input is split into
sentences, columns and documents by the training reader (:func:`nerlit.data.readers.conll_blocks`);
with ``-DOCSTART-`` lines it is tagged with its documents (document context, for models trained
with it), and its chunks end at document boundaries where they can.
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

from nerlit.data.readers import ConllBlock, conll_blocks, conll_word, read_lines
from nerlit.data.schemes import spans
from nerlit.data.types import Entity
from nerlit.errors import OptionError
from nerlit.inference.html import HtmlWriter
from nerlit.inference.outputs import atomic_text_file
from nerlit.inference.tagger import Tagger

OUTPUT_FORMATS = ("jsonl", "conll", "html")
ENTITY_FIELDS = ("text", "label", "start", "end", "score")


@dataclass
class PredictSummary:
    texts: int = 0
    words: int = 0
    entities: int = 0


def entity_json(entity: Entity) -> dict:
    return {k: getattr(entity, k) for k in ENTITY_FIELDS}


@contextlib.contextmanager
def _open_output(path: str | Path) -> Iterator[TextIO]:
    """``path`` for writing UTF-8 (its folder made), or stdout for ``-``. A file appears whole
    when tagging ends, or not at all: an error leaves any earlier output as it was."""
    if str(path) == "-":
        if hasattr(sys.stdout, "reconfigure"):
            sys.stdout.reconfigure(encoding="utf-8")
        yield sys.stdout
        return
    with atomic_text_file(path, option="output") as handle:
        yield handle


def _input_lines(input: str | Path, encoding: str | None) -> Iterator[tuple[int, str]]:
    """(number, line) of ``input`` (``-``: stdin) by the readers' one rule for bytes, encodings,
    BOMs and line endings (:func:`nerlit.data.readers.read_lines`), as training reads corpora."""
    if str(input) == "-":
        return read_lines(sys.stdin.buffer, encoding, option="encoding")
    path = Path(input).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such input file (input=FILE, or input=- for stdin)")
    return read_lines(path, encoding, option="encoding")


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _document_chunks(blocks: Iterator[ConllBlock], size: int) -> Iterator[list[ConllBlock]]:
    """Chunks of ``size`` blocks or more that end where a document does, when there are documents.

    Context never crosses chunks, so a document cut in two would lose some at the cut; one longer
    than ``2 * size`` blocks is cut all the same, to keep memory bounded.
    """
    chunk: list[ConllBlock] = []
    for block in blocks:
        if len(chunk) >= max(size, 1):
            at_boundary = block.document is None or block.document != chunk[-1].document
            if at_boundary or len(chunk) >= 2 * size:
                yield chunk
                chunk = []
        chunk.append(block)
    if chunk:
        yield chunk


def _json_line(record: dict) -> str:
    """Raw UTF-8 JSON, but with the line separators that ``str.splitlines`` honours escaped."""
    line = json.dumps(record, ensure_ascii=False)
    for char in ("\x85", "\u2028", "\u2029"):
        line = line.replace(char, f"\\u{ord(char):04x}")
    return line + "\n"


def _count_lines(path: str | Path, encoding: str | None) -> int | None:
    """The progress bar's total: lines as :func:`_input_lines` will read them (gzip, UTF-16,
    ``\\r`` endings and a last line without a break count as they are read); None for stdin."""
    if str(path) == "-" or not Path(path).expanduser().is_file():
        return None
    return sum(1 for _ in _input_lines(path, encoding))


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


def output_format(output: str | Path) -> str:
    """The format an output's name asks for: ``.html``/``.htm`` -> html, ``.conll`` -> conll,
    anything else (``.jsonl``, stdout) -> jsonl. Why: ``output=tags.html`` once wrote JSONL into
    a file named .html, exit 0."""
    suffix = Path(str(output)).suffix.lower()
    return {".html": "html", ".htm": "html", ".conll": "conll"}.get(suffix, "jsonl")


def predict_file(
    tagger: Tagger,
    input: str | Path,
    output: str | Path,
    format: str | None = None,
    chunk_size: int = 2048,
    progress: bool | None = None,
    encoding: str | None = "utf-8",
    token_column: int = 0,
) -> PredictSummary:
    """Tag every text of ``input`` into ``output`` (``-`` is stdin/stdout); see the module doc.

    ``encoding`` is the input's (a byte order mark overrides it; None: UTF-8, else cp1252 or
    latin-1, as corpora are read); output is always UTF-8. ``progress=None`` shows a bar (on
    stderr) when the input has more lines than one chunk. ``token_column``: CoNLL's word column.
    ``format=None``: from the output's name (:func:`output_format`).
    """
    format = format or output_format(output)
    if format not in OUTPUT_FORMATS:
        raise OptionError(f"format={format!r} is not one of {OUTPUT_FORMATS}")
    total = _count_lines(input, encoding) if progress is not False else None
    if progress is None:
        progress = total is None or total > chunk_size
    summary = PredictSummary()
    lines = _input_lines(input, encoding)
    with _open_output(output) as sink, _progress(progress) as bar:
        task = bar.add_task("tagging", total=total)
        if format == "conll":
            blocks = conll_blocks(lines, Path(str(input)).name)
            for chunk in _document_chunks(blocks, chunk_size):
                _write_conll(tagger, chunk, sink, summary, token_column, str(input))
                bar.advance(task, sum(len(b.lines) for b in chunk))
            return summary
        title = f"nerlit: {Path(str(input)).name}"
        page = HtmlWriter(sink, title=title) if format == "html" else None  # written as it goes
        for chunk in _chunks(lines, chunk_size):
            texts = [line for _, line in chunk]
            entities = tagger.predict(texts)
            summary.texts += len(texts)
            summary.entities += sum(map(len, entities))
            if format == "jsonl":
                for text, found in zip(texts, entities):
                    record = {"text": text, "entities": [entity_json(e) for e in found]}
                    sink.write(_json_line(record))
            else:
                for text, found in zip(texts, entities):
                    page.add(text, found)
            bar.advance(task, len(chunk))
        if page is not None:
            page.close()
    return summary


def _write_conll(
    tagger: Tagger,
    blocks: Sequence[ConllBlock],
    sink: TextIO,
    summary: PredictSummary,
    token_column: int,
    name: str,
) -> None:
    """Each word line gets the predicted tag as a new last column, in the line's own separator."""
    sentences = [b for b in blocks if b.columns]
    words = [
        [conll_word(f, token_column, name, n) for n, f in enumerate(b.columns, start=b.start)]
        for b in sentences
    ]
    tags = iter(tagger.predict_tags(words, [b.document for b in sentences]))
    for block in blocks:
        if not block.columns:
            sink.write(block.lines[0] + "\n")
            continue
        predicted = next(tags)
        summary.texts += 1
        summary.words += len(block.lines)
        summary.entities += len(spans(predicted))
        for line, tag in zip(block.lines, predicted):
            separator = "\t" if "\t" in line else " "
            sink.write(f"{line}{separator}{tag}\n")

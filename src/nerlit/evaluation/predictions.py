"""predictions.conll: the words of a scored split with their gold and predicted tags.

One file format for what ``evaluate`` and ``train`` scored, so ``nerlit compare`` can pair two
runs sentence by sentence and anyone can grep a number that looks wrong. Each line is
``word gold predicted`` (conlleval's input, space-separated); a blank line ends a sentence. A
sentence that starts a new document is preceded by a ``-DOCSTART- O O`` line and a blank line,
as in CoNLL-2003, so the bootstrap can resample documents; nerlit's own CoNLL reader takes such
lines as document markers, not words. Words are written as they are (a word is never split:
reading takes the last two fields as the tags and the rest as the word).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nerlit.data.types import Sentence
from nerlit.errors import CorpusFormatError, DataError

log = logging.getLogger(__name__)

DOCSTART = "-DOCSTART-"


@dataclass
class Predictions:
    """Gold sentences (``document`` from the file's markers) and one predicted tag per word."""

    sentences: list[Sentence]
    pred: list[list[str]]
    source: str = ""

    @property
    def gold(self) -> list[list[str]]:
        return [list(s.tags) for s in self.sentences]

    @property
    def documents(self) -> list[str | None]:
        return [s.document for s in self.sentences]


def write_predictions(
    sentences: Sequence[Sentence], pred: Sequence[Sequence[str]], path: str | Path
) -> bool:
    """Write ``path``; False (and a warning) when ``pred`` does not cover ``sentences``.

    Training with ``limit_test_batches`` scores part of the test split, and which part is not
    known here, so nothing is written rather than a file that pairs words with the wrong tags.
    """
    path = Path(path)
    if len(pred) != len(sentences) or any(len(p) != len(s) for p, s in zip(pred, sentences)):
        log.warning(
            "%d of %d sentences were scored (limit_test_batches?): %s not written",
            len(pred),
            len(sentences),
            path.name,
        )
        return False
    previous: str | None = None
    with path.open("w", encoding="utf-8") as handle:
        for sentence, tags in zip(sentences, pred):
            if sentence.document is not None and sentence.document != previous:
                handle.write(f"{DOCSTART} O O\n\n")
            previous = sentence.document
            for word, gold, guess in zip(sentence.words, sentence.tags, tags):
                handle.write(f"{word} {gold} {guess}\n")
            handle.write("\n")
    return True


def read_predictions(path: str | Path) -> Predictions:
    """Read a file written by :func:`write_predictions` (or any ``word gold predicted`` file)."""
    path = Path(path)
    sentences: list[Sentence] = []
    pred: list[list[str]] = []
    words: list[str] = []
    gold: list[str] = []
    guess: list[str] = []
    document: str | None = None
    start = 1

    def close() -> None:
        if words:
            where = f"{path.name}:{start}"
            sentences.append(Sentence(tuple(words), tuple(gold), where, document))
            pred.append(list(guess))
            words.clear(), gold.clear(), guess.clear()

    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                close()
                start = number + 1
                continue
            fields = line.rsplit(" ", 2)
            if fields[0] == DOCSTART:
                close()
                document = f"{path.name}:{number}"
                continue
            if len(fields) != 3 or not fields[0]:
                raise CorpusFormatError(
                    path, number, f"{line!r} is not three fields", "'word gold predicted'"
                )
            words.append(fields[0])
            gold.append(fields[1])
            guess.append(fields[2])
    close()
    return Predictions(sentences, pred, str(path))


def _shown(words: Sequence[str], at: int) -> str:
    return repr(words[at]) if at < len(words) else "(end of sentence)"


def check_same_sentences(a: Predictions, b: Predictions) -> None:
    """Refuse two runs that did not score the same sentences, in the same order, against the
    same gold tags: a paired comparison pairs them one by one. The message names the first
    difference."""
    for i, (one, two) in enumerate(zip(a.sentences, b.sentences), start=1):
        where = f"sentence {i} ({one.id} in A, {two.id} in B)"
        if one.words != two.words:
            at = next(
                (j for j, (x, y) in enumerate(zip(one.words, two.words)) if x != y),
                min(len(one.words), len(two.words)),
            )
            raise DataError(
                f"A and B did not score the same sentences: {where} differs at word {at + 1}: "
                f"{_shown(one.words, at)} in A, {_shown(two.words, at)} in B"
            )
        if one.tags != two.tags:
            at = next(j for j, (x, y) in enumerate(zip(one.tags, two.tags)) if x != y)
            raise DataError(
                f"A and B were scored against different gold tags: {where}, word {at + 1} "
                f"{one.words[at]!r}: {one.tags[at]} in A, {two.tags[at]} in B"
            )
    if len(a.sentences) != len(b.sentences):
        shorter = min(len(a.sentences), len(b.sentences))
        raise DataError(
            f"A and B did not score the same sentences: A has {len(a.sentences)}, B "
            f"{len(b.sentences)} (the first {shorter} agree)"
        )

"""Files -> one IOB2 :class:`Corpus`: scheme detection and repair, empty sentences, splits.

A saved Hugging Face dataset (``data.format=datasets``) is read here the same way: its splits
take the place of files (:func:`_sources`), and its rows go through the same detection, repairs
and carving.

What was done to the data is counted in :class:`CorpusReport` and logged, never done silently;
what cannot be done (a split left without sentences) stops the run before training.
"""

from __future__ import annotations

import inspect
import logging
import math
import random
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from nerlit.data import readers
from nerlit.data.hf_datasets import FORMAT as DATASETS
from nerlit.data.hf_datasets import DatasetSplit, dataset_splits, iter_dataset
from nerlit.data.readers import iter_sentences
from nerlit.data.schemes import SCHEMES, SchemeEvidence, scheme_evidence, to_iob2
from nerlit.data.types import Corpus, Sentence
from nerlit.errors import CorpusFormatError, DataError
from nerlit.options import COLUMN, Options, Rule, codec, one_of

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
#: every data.format: the file formats, and saved Hugging Face datasets
CORPUS_FORMATS = (*readers.FILE_FORMATS, DATASETS)
#: what a split is read from: a file, or a split of a saved dataset
Source = str | Path | DatasetSplit


@dataclass(frozen=True)
class ReadOptions(Options):
    """How a corpus's files are read: every reading option, listed once with its rule.

    The data configs set them as ``data.format``, ``data.encoding``, ... (keywords of
    :class:`~nerlit.data.datamodule.NerDataModule`; ``config_checks`` applies :attr:`RULES` to
    them); :func:`load_corpus`, :func:`load_file` and :func:`stream_corpus` take them as this
    object or as keywords; a run records them flat beside its other data settings
    (:meth:`from_config` reads them back). A new reading option is a field and its rule here,
    its use in :func:`_sentences` and its config default.
    """

    RULES: ClassVar[Mapping[str, Rule]] = {
        "format": one_of(CORPUS_FORMATS, null="from the file's name"),
        "encoding": codec(null="UTF-8, falling back to latin-1"),
        "token_column": COLUMN,
        "tag_column": COLUMN,
        "scheme": one_of(SCHEMES),
    }
    ERROR: ClassVar[type[Exception]] = DataError
    KEY_PREFIX: ClassVar[str] = "data."

    #: conll | jsonl | gmb | datasets; None: from the file's name (:func:`infer_format`)
    format: str | None = None
    #: None: UTF-8, else cp1252 or latin-1 where the whole file decodes so (GMB: cp1252)
    encoding: str | None = None
    #: a CoNLL file's columns by number, a saved dataset's by name
    token_column: int | str = 0
    tag_column: int | str = -1
    #: auto (detected per file) | iob1 | iob2 | bioes
    scheme: str = "auto"

    def for_file(self, path: str | Path) -> ReadOptions:
        """These options with the format settled: a given one, else the one ``path``'s name
        suggests."""
        return self if self.format else replace(self, format=infer_format(path))

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CorpusReport:
    """How the corpus was read: the numbers a user needs to trust it.

    ``scheme`` is train's (the file's, from :func:`load_file`); ``schemes`` each split's, since
    each file is detected on its own (a BIOES test file beside IOB2 train is read as BIOES).
    """

    scheme: str = "iob2"
    schemes: dict[str, str] = field(default_factory=dict)
    repaired_tags: dict[str, int] = field(default_factory=dict)
    empty_skipped: dict[str, int] = field(default_factory=dict)
    carved_from_train: list[str] = field(default_factory=list)


def _carve_sizes(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """How many of ``n`` sentences :func:`split_sentences` puts in train, val and test."""
    n_train = min(int(round(fractions[0] * n)), n)
    n_val = min(int(round(fractions[1] * n)), n - n_train)
    return n_train, n_val, n - n_train - n_val


def split_sentences(
    sentences: Sequence[Sentence], fractions: Sequence[float], seed: int
) -> tuple[list[Sentence], list[Sentence], list[Sentence]]:
    """A fixed, seeded sentence-level split: the same seed always gives the same three lists."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise DataError(f"data.split_fractions must be 3 numbers summing to 1, got {fractions}")
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    n_train, n_val, _ = _carve_sizes(len(order), fractions)
    pick = [sentences[i] for i in order]
    return pick[:n_train], pick[n_train : n_train + n_val], pick[n_train + n_val :]


def _to_iob2(
    split: str, sentences: list[Sentence], scheme: str, report: CorpusReport
) -> list[Sentence]:
    """One split in ``scheme`` -> IOB2, empty sentences dropped; both counted in report."""
    return list(_iob2_stream(split, sentences, scheme, report))


def _iob2_stream(
    split: str, sentences: Iterable[Sentence], scheme: str, report: CorpusReport
) -> Iterator[Sentence]:
    """:func:`_to_iob2` one sentence at a time; the counts are reported once all are taken."""
    kept = empty = repaired = 0
    for sentence in sentences:
        if not sentence.words:
            empty += 1
            continue
        tags, fixed = to_iob2(sentence.tags, scheme)
        repaired += fixed
        kept += 1
        yield replace(sentence, tags=tuple(tags))
    report.empty_skipped[split] = empty
    report.repaired_tags[split] = repaired
    if repaired:
        log.warning(
            "%s: repaired %d invalid %s tags (an I- that continues no entity starts one)",
            split,
            repaired,
            scheme,
        )
    if report.empty_skipped[split]:
        log.warning("%s: skipped %d empty sentences", split, report.empty_skipped[split])
    return kept


def _place(sentence: Sentence, word: int, format: str) -> str:
    """Where a word is, for the log: ``file:line`` in CoNLL (a sentence's words are the lines
    after its first, which its id names), else the sentence's id and the word's number."""
    name, _, first = sentence.id.rpartition(":")
    if format == "conll" and first.isdigit():
        return f"{name}:{int(first) + word}"
    return f"{sentence.id} word {word + 1}"


def _evidence(
    sentences: Iterable[Sentence], format: str, keep: int = 5
) -> tuple[SchemeEvidence, dict[str, list[str]]]:
    """:func:`scheme_evidence` of a file taken sentence by sentence (every sentence is read, so
    the reader checks the whole file), with the first ``keep`` places of I- and B- starts."""
    total = SchemeEvidence()
    places: dict[str, list[str]] = {"I-": [], "B-": []}
    for sentence in sentences:
        if total.bioes:
            continue  # the scheme is BIOES whatever else the file holds
        found = scheme_evidence([sentence.tags], keep)
        total.bioes = found.bioes
        total.i_starts += found.i_starts
        total.b_starts += found.b_starts
        for kind, at in (("I-", found.i_starts_at), ("B-", found.b_starts_at)):
            room = keep - len(places[kind])
            places[kind] += [_place(sentence, w, format) for _, w in at[:room]]
    return total, places


def _detect(split: str, sentences: Iterable[Sentence], format: str) -> str:
    """The file's scheme by the weight of its evidence (:func:`scheme_evidence`); the entity
    starts that contradict it are logged with where the first few are, as annotation slips,
    so two slips neither decide the scheme nor hide."""
    evidence, found = _evidence(sentences, format)
    count, _ = evidence.disagreeing()
    if count:
        iob1 = evidence.scheme == "iob1"
        agree, usual, slip = (
            (evidence.i_starts, "I-", "B-") if iob1 else (evidence.b_starts, "B-", "I-")
        )
        places = found[slip]
        shown = ", ".join(places)
        log.warning(
            "%s: tag scheme %s, since %d entities start with %s; %d start with %s after O or "
            "another type instead, annotation slips read as starting an entity (%s%s)",
            split,
            evidence.scheme,
            agree,
            usual,
            count,
            slip,
            shown,
            ", ..." if count > len(places) else "",
        )
    return evidence.scheme


def _sentences(path: Source, read: ReadOptions) -> Iterator[Sentence]:
    """A source's sentences with their own tags, from the reader of its format."""
    columns = (read.token_column, read.tag_column)
    if read.format == DATASETS:
        source = path if isinstance(path, DatasetSplit) else DatasetSplit(str(path))
        return iter_dataset(source, *columns, read.scheme)
    return iter_sentences(path, read.format, read.encoding, *columns, read.scheme)


def _sources(
    format: str,
    files: dict[str, str | Path | None],
    split_names: Sequence[str | None],
) -> dict[str, Source | None]:
    """What each split is read from (None: carved from train): its file, or for a saved
    dataset the split :func:`~nerlit.data.hf_datasets.dataset_splits` finds for it."""
    if format == DATASETS and files["train"]:
        names = dict(zip(SPLITS, split_names))
        return dict(dataset_splits(files["train"], files["val"], files["test"], names))
    return dict(files)


def _source_name(path: Source) -> str:
    """A source as ``split.json`` records it: resolved, so it means the same from anywhere."""
    if isinstance(path, DatasetSplit):
        return path.source()
    return str(Path(path).expanduser().resolve())


def _read_split(
    split: str, path: Source, read: ReadOptions, report: CorpusReport
) -> list[Sentence]:
    """One file as one IOB2 split, in its own scheme (detected from its tags unless named)."""
    scheme = read.scheme
    sentences = list(_sentences(path, read))
    found = _detect(split, sentences, read.format) if scheme == "auto" else scheme
    report.schemes[split] = found
    log.info("%s: %s, tag scheme %s%s", split, path, found, " (detected)" * (scheme == "auto"))
    kept = _to_iob2(split, sentences, found, report)
    if not kept:
        raise CorpusFormatError(
            path,
            None,
            f"{split} has 0 sentences ({report.empty_skipped[split]} empty ones skipped)",
            "at least 1 sentence with words",
        )
    return kept


def _reading(read: ReadOptions | None, values: dict[str, Any], path: str | Path) -> ReadOptions:
    """``read`` with keyword options on top, its format settled for ``path``."""
    return replace(read or ReadOptions(), **values).for_file(path)


def _smallest_train(fractions: Sequence[float], carved: Sequence[str]) -> int | None:
    """The fewest train sentences from which on every ``carved`` split gets at least 1 (None when
    one's share is 0). Rounding moves a split's size by at most one, so from ``2 / share``
    sentences on every split has one, and only the sizes below that are tried."""
    shares = [f for s, f in zip(SPLITS, fractions) if s in carved]
    if min(shares) <= 0:
        return None
    last_short = 0
    for n in range(1, math.ceil(2 / min(shares)) + 1):
        sizes = dict(zip(SPLITS, _carve_sizes(n, fractions)))
        if not all(sizes[s] for s in carved):
            last_short = n
    return last_short + 1


def _check_carved(
    splits: dict[str, list[Sentence]],
    missing: list[str],
    fractions: Sequence[float],
    given: Sequence[float],
    train_file: str | Path,
) -> None:
    """Every carved split (and what is left of train) needs a sentence: an empty validation
    split never validates and an empty test split crashes the end of training."""
    carved = ["train", *missing]
    empty = [s for s in carved if not splits[s]]
    if not empty:
        return
    n = sum(len(splits[s]) for s in carved)
    sizes = ", ".join(f"{s} {len(splits[s])}" for s in SPLITS if s in carved)
    need = _smallest_train(fractions, carved)
    short = [s for s in empty if s != "train"] or ["train"]
    fix = " and ".join(short)
    files = " and ".join(f"data.{s}_file" for s in short if s != "train")
    enough = f"a train file of at least {need} sentences with these fractions, " if need else ""
    raise CorpusFormatError(
        train_file,
        None,
        f"{n} sentences carved into {sizes} by data.split_fractions={[float(f) for f in given]}; "
        "every split needs at least 1 sentence",
        f"{enough}a larger data.split_fractions share for {fix}"
        + (f", or {files}" if files else ""),
    )


def load_corpus(
    train_file: str | Path,
    val_file: str | Path | None = None,
    test_file: str | Path | None = None,
    *,
    read: ReadOptions | None = None,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    split_seed: int = 42,
    name: str | None = None,
    train_split: str = "train",
    val_split: str | None = "validation",
    test_split: str | None = "test",
    **reading: Any,
) -> tuple[Corpus, CorpusReport]:
    """Read the files, convert each from its own scheme to IOB2, and carve any missing val/test
    split out of train. Reading options (:class:`ReadOptions`) as ``read=`` or as keywords
    (``format="gmb"``), the keywords replacing the object's values.

    ``scheme='auto'`` detects each file's scheme from its own tags: files of one corpus may come
    from different tools. Missing splits take their share of ``split_fractions`` from the train
    file (both missing: 80/10/10 by default; only test missing: test gets 0.1 / 0.9 of train's
    sentences, and so on); a split left with no sentence stops here, before training.

    ``format='datasets'``: ``train_file`` is a saved Hugging Face dataset's folder, and
    ``train_split``/``val_split``/``test_split`` name its splits; one it lacks is carved as a
    missing file is (see :func:`~nerlit.data.hf_datasets.dataset_splits`).
    """
    read = _reading(read, reading, train_file)
    given = {"train": train_file, "val": val_file, "test": test_file}
    files = _sources(read.format, given, (train_split, val_split, test_split))
    report = CorpusReport()
    splits = {s: _read_split(s, path, read, report) for s, path in files.items() if path}
    report.scheme = report.schemes["train"]
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        share = {s: f for s, f in zip(SPLITS, split_fractions)}
        total = share["train"] + sum(share[s] for s in missing)
        fractions = [share["train"] / total] + [
            share[s] / total if s in missing else 0.0 for s in ("val", "test")
        ]
        train, val, test = split_sentences(splits["train"], fractions, split_seed)
        splits["train"] = train
        splits.update({s: part for s, part in (("val", val), ("test", test)) if s in missing})
        report.carved_from_train = missing
        report.schemes.update({s: report.scheme for s in missing})
        _check_carved(splits, missing, fractions, split_fractions, train_file)
        log.info("%s carved from %s (seed %d)", " and ".join(missing), train_file, split_seed)
    sources = {s: _source_name(p) for s, p in files.items() if p}
    corpus = Corpus(**splits, name=name or Path(train_file).stem, sources=sources)
    return corpus, report


def corpus_from_options(options: Mapping[str, Any]) -> tuple[Corpus, CorpusReport]:
    """:func:`load_corpus` from a data config or a run's recorded data settings (flat, as
    ``data.*``): the files, the reading options and the split settings among them; the rest
    (batch sizes, windows) is not the corpus's business."""
    taken = set(inspect.signature(load_corpus).parameters) - {"read", "reading"}
    chosen = {key: value for key, value in options.items() if key in taken}
    return load_corpus(**chosen, read=ReadOptions.from_config(options))


def infer_format(path: str | Path) -> str:
    """The reader a file's name suggests: ``.jsonl`` -> jsonl, ``.csv(.gz)`` -> gmb, else conll."""
    name = Path(path).name.lower().removesuffix(".gz")
    if name.endswith(".jsonl"):
        return "jsonl"
    return "gmb" if name.endswith(".csv") else "conll"


def load_file(
    path: str | Path,
    split: str = "test",
    *,
    read: ReadOptions | None = None,
    **reading: Any,
) -> tuple[list[Sentence], CorpusReport]:
    """One file as one IOB2 split, with no train file: what a user scores a model on.

    Without a format it is inferred from the name (:func:`infer_format`); ``scheme='auto'``
    detects it from this file's own tags, as :func:`load_corpus` does for each of its files.
    """
    report = CorpusReport()
    sentences = _read_split(split, path, _reading(read, reading, path), report)
    report.scheme = report.schemes[split]
    return sentences, report


def stream_corpus(
    train_file: str | Path,
    val_file: str | Path | None = None,
    test_file: str | Path | None = None,
    *,
    read: ReadOptions | None = None,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    split_seed: int = 42,
    name: str | None = None,
    report: CorpusReport | None = None,
    train_split: str = "train",
    val_split: str | None = "validation",
    test_split: str | None = "test",
    **reading: Any,
) -> Iterator[tuple[str, int, Sentence]]:
    """:func:`load_corpus`'s sentences as (split, place, IOB2 sentence), none of them held:
    the same readers, checks, schemes, repairs and carving, and ``report`` filled as it does
    once the last is taken. Each file is read again after a detection pass (``scheme=auto``);
    a train file that val/test are carved from is read once to count its sentences, then
    dealt out as :func:`split_sentences` deals them. ``place``: the sentence's position in its
    split as :func:`load_corpus` orders it. Given files come one after another, train first.
    """
    report = report if report is not None else CorpusReport()
    read = _reading(read, reading, train_file)
    scheme = read.scheme
    given = {"train": train_file, "val": val_file, "test": test_file}
    files = _sources(read.format, given, (train_split, val_split, test_split))
    missing = [s for s in SPLITS if not files[s]]
    for split, path in files.items():
        if not path:
            continue

        def sentences(path=path):
            return _sentences(path, read)

        carving = split == "train" and missing
        counted = [0]

        def counting(sentences, counted=counted):
            for sentence in sentences:
                counted[0] += bool(sentence.words)
                yield sentence

        if scheme == "auto":
            found = _detect(split, counting(sentences()), read.format)
        else:
            found = scheme
            if carving:
                for _ in counting(sentences()):
                    pass
        report.schemes[split] = found
        log.info("%s: %s, tag scheme %s%s", split, path, found, " (detected)" * (scheme == "auto"))
        deal = None
        if carving:
            report.scheme = found
            if not counted[0]:
                raise CorpusFormatError(
                    path, None, f"{split} has 0 sentences", "at least 1 sentence with words"
                )
            share = {s: f for s, f in zip(SPLITS, split_fractions)}
            total = share["train"] + sum(share[s] for s in missing)
            fractions = [share["train"] / total] + [
                share[s] / total if s in missing else 0.0 for s in ("val", "test")
            ]
            n = counted[0]
            sizes = _carve_sizes(n, fractions)
            if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
                split_sentences([], fractions, split_seed)  # its error
            order = list(range(n))
            random.Random(split_seed).shuffle(order)
            position = array("q", bytes(8 * n))  # 8 bytes a sentence
            for place, index in enumerate(order):
                position[index] = place
            del order
            bounds = [(SPLITS[0], 0), (SPLITS[1], sizes[0]), (SPLITS[2], sizes[0] + sizes[1])]
            _check_carved(
                {s: range(size) for s, size in zip(SPLITS, sizes)},
                missing,
                fractions,
                split_fractions,
                train_file,
            )
            report.carved_from_train = missing
            report.schemes.update({s: found for s in missing})

            def deal(index: int, position=position, bounds=bounds) -> tuple[str, int]:
                place = position[index]
                for name_, start in reversed(bounds):
                    if place >= start:
                        return name_, place - start
                raise AssertionError(place)

        kept = 0
        for index, sentence in enumerate(_iob2_stream(split, sentences(), found, report)):
            kept += 1
            yield (*deal(index), sentence) if deal else (split, index, sentence)
        if not kept:
            raise CorpusFormatError(
                path,
                None,
                f"{split} has 0 sentences ({report.empty_skipped[split]} empty ones skipped)",
                "at least 1 sentence with words",
            )
        if carving:
            log.info("%s carved from %s (seed %d)", " and ".join(missing), train_file, split_seed)
    report.scheme = report.schemes["train"]

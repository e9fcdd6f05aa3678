"""Corpus statistics as the configured model sees them (``nerlit stats``): per split, the
entities of each type, sentence lengths in subwords, how many sentences exceed the window and
will be split, which tag scheme was detected and what was repaired.
"""

from __future__ import annotations

import logging
import math
from collections import Counter

from nerlit.data.corpus import SPLITS, CorpusReport, stream_corpus
from nerlit.data.datamodule import NerDataModule, apply_unknown_labels
from nerlit.data.schemes import spans, split_tag
from nerlit.data.types import Corpus, Sentence

log = logging.getLogger(__name__)
PERCENTILES = (50, 90, 95, 99, 100)
#: sentences whose new words are tokenized in one batch call
CHUNK = 1024


def percentile(histogram: Counter[int], p: float) -> float:
    """``np.percentile`` (linear interpolation) of the values a histogram counts, computed from
    the counts: the lengths themselves are never held."""
    n = sum(histogram.values())
    if n == 0:
        return 0.0
    position = p / 100 * (n - 1)
    below, above = math.floor(position), math.ceil(position)
    low = high = None
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if low is None and seen > below:
            low = value
        if seen > above:
            high = value
            break
    assert low is not None and high is not None
    return low + (high - low) * (position - below)


def corpus_stats(datamodule: NerDataModule) -> dict:
    """Statistics of every split of the corpus a (not set-up) DataModule is configured to read.

    The corpus is read and checked as :meth:`NerDataModule.setup` reads it (same readers, scheme
    detection, repairs, split carving, unseen-label policy), but sentence by sentence
    (:func:`stream_corpus`): each sentence's subword length, window count and entities are
    counted and only their histograms kept, so neither windows nor the corpus are ever held
    (20 MB of CoNLL peaked at 758 MB holding it). Labels unseen in train are settled at the
    end: mapping one to O drops its entities, and the error names the split's first sentence
    with one, as :func:`apply_unknown_labels` would on the loaded corpus.
    """
    report = CorpusReport()
    encoder = datamodule.make_encoder()
    n_special = datamodule.window_limit() - encoder.budget  # [CLS]/[SEP] or <s>/</s>
    counts = {
        split: {"lengths": Counter(), "entities": Counter(), "typed": Counter(), "first": {}}
        for split in SPLITS
    }
    totals = {split: Counter() for split in SPLITS}
    chunk: list[tuple[str, int, Sentence]] = []

    def count(chunk: list[tuple[str, int, Sentence]]) -> None:
        encoder._pieces.clear()  # one chunk's words at a time
        encoder._casings.clear()
        encoder.word_pieces([w for _, _, s in chunk for w in s.words])  # one batch call
        for split, place, sentence in chunk:
            got = counts[split]
            pieces = [len(p) for p in encoder.word_pieces(sentence.words)]
            got["lengths"][sum(pieces) + n_special] += 1
            totals[split]["windowed"] += len(encoder.spans(pieces)) > 1
            totals[split]["sentences"] += 1
            totals[split]["words"] += len(sentence.words)
            got["entities"].update(kind for kind, _, _ in spans(sentence.tags))
            for kind in {split_tag(t)[1] for t in sentence.tags if t != "O"}:
                got["typed"][kind] += sum(split_tag(t)[1] == kind for t in sentence.tags)
                if split != "train":
                    first = got["first"].get(kind)
                    if first is None or place < first[0]:
                        got["first"][kind] = (place, sentence)

    for item in stream_corpus(
        **datamodule.corpus_options, read=datamodule.read_options, report=report
    ):
        chunk.append(item)
        if len(chunk) == CHUNK:
            count(chunk)
            chunk = []
    count(chunk)
    train_types = sorted(counts["train"]["typed"])
    labels = ["O"] + [f"{p}-{t}" for t in train_types for p in ("B", "I")]
    unknown = {split: sorted(set(counts[split]["typed"]) - set(train_types)) for split in SPLITS}
    firsts = {
        split: sorted((counts[split]["first"][k] for k in unknown[split]), key=lambda f: f[0])[:1]
        for split in ("val", "test")
    }
    # the policy's check and error, on the first sentence of each split with an unseen label
    first_only = Corpus([], [s for _, s in firsts["val"]], [s for _, s in firsts["test"]])
    if datamodule.unknown_labels != "o" or not any(unknown.values()):
        apply_unknown_labels(first_only, labels, datamodule.unknown_labels)
    for split in ("val", "test"):
        mapped = sum(counts[split]["typed"][k] for k in unknown[split])
        if mapped:
            log.warning("%s: %d words had labels unseen in train and were tagged O", split, mapped)
        for kind in unknown[split]:
            del counts[split]["entities"][kind]
    stats: dict = {"scheme": report.scheme, "window": datamodule.window_limit(), "splits": {}}
    for split in SPLITS:
        got = counts[split]
        stats["splits"][split] = {
            "sentences": totals[split]["sentences"],
            "words": totals[split]["words"],
            "entities": dict(sorted(got["entities"].items())),
            "subword_length_percentiles": {
                f"p{p}": int(percentile(got["lengths"], p)) for p in PERCENTILES
            },
            "windowed_sentences": totals[split]["windowed"],
            "repaired_tags": report.repaired_tags.get(split, 0),
            "empty_skipped": report.empty_skipped.get(split, 0),
        }
    return stats

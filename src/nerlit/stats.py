"""``python -m nerlit.stats data=...``: per-split counts as the configured model sees them.

Read before training: how many entities of each type, how long sentences are in subwords, how
many exceed the window and will be split, which tag scheme was detected and what was repaired.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from nerlit.cli import exit_on_user_error
from nerlit.config import CONFIG_DIR
from nerlit.data.corpus import load_corpus
from nerlit.data.datamodule import NerDataModule, apply_unknown_labels
from nerlit.data.schemes import spans
from nerlit.experiments.run_dir import ensure_writable_dir
from nerlit.models.pretrained import load_tokenizer, resolve_pretrained
from nerlit.validation import validate

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

    The corpus is read and checked as :meth:`NerDataModule.setup` reads it (same reader, scheme
    detection, repairs, split carving, unseen-label policy), but no window is built: each
    sentence's subword length and window count are taken as it goes and only their histogram is
    kept. ``setup()`` held every window of every split, which made 20 MB of CoNLL peak at 0.9-1.1
    GB; what remains is the corpus itself, which nerlit's readers load whole.
    """
    corpus, report = load_corpus(**datamodule.corpus_options)
    apply_unknown_labels(corpus, corpus.labels(), datamodule.unknown_labels)
    encoder = datamodule.make_encoder()
    n_special = datamodule.window_limit() - encoder.budget  # [CLS]/[SEP] or <s>/</s>
    stats: dict = {"scheme": report.scheme, "window": datamodule.window_limit(), "splits": {}}
    for split, sentences in corpus.splits().items():
        lengths: Counter[int] = Counter()
        entities: Counter[str] = Counter()
        words = windowed = 0
        for start in range(0, len(sentences), CHUNK):
            chunk = sentences[start : start + CHUNK]
            encoder.word_pieces([w for s in chunk for w in s.words])  # one batch call per chunk
            for sentence in chunk:
                pieces = [len(p) for p in encoder.word_pieces(sentence.words)]
                lengths[sum(pieces) + n_special] += 1
                windowed += len(encoder.spans(pieces)) > 1
                entities.update(kind for kind, _, _ in spans(sentence.tags))
                words += len(sentence.words)
        stats["splits"][split] = {
            "sentences": len(sentences),
            "words": words,
            "entities": dict(sorted(entities.items())),
            "subword_length_percentiles": {
                f"p{p}": int(percentile(lengths, p)) for p in PERCENTILES
            },
            "windowed_sentences": windowed,
            "repaired_tags": report.repaired_tags.get(split, 0),
            "empty_skipped": report.empty_skipped.get(split, 0),
        }
    return stats


def stats_table(stats: dict) -> Table:
    splits = stats["splits"]
    table = Table(title=f"corpus statistics (scheme {stats['scheme']}, window {stats['window']})")
    table.add_column("")
    for split in splits:
        table.add_column(split, justify="right")
    rows = ["sentences", "words", "windowed_sentences", "repaired_tags", "empty_skipped"]
    for row in rows:
        table.add_row(row.replace("_", " "), *(str(s[row]) for s in splits.values()))
    for p in PERCENTILES:
        name = "max" if p == 100 else f"p{p}"
        table.add_row(
            f"subwords {name}",
            *(str(s["subword_length_percentiles"][f"p{p}"]) for s in splits.values()),
        )
    types = sorted({t for s in splits.values() for t in s["entities"]})
    for t in types:
        table.add_row(f"entities {t}", *(str(s["entities"].get(t, 0)) for s in splits.values()))
    return table


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="stats.yaml")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    validate(cfg, "stats")  # before the corpus is read or the tokenizer loaded
    out = ensure_writable_dir(cfg.paths.output_dir, "paths.output_dir")
    resolved = resolve_pretrained(cfg.model.name, cfg.model.pretrained, cfg.paths.models_dir)
    datamodule = instantiate(cfg.data, tokenizer=load_tokenizer(resolved.location))
    stats = corpus_stats(datamodule)
    Console().print(stats_table(stats))
    (out / "stats.json").write_text(json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()

"""``nerlit stats data=...``: per-split counts as the configured model sees them
(:mod:`nerlit.data.statistics`), printed as a table and written to stats.json.

Read before training: how many entities of each type, how long sentences are in subwords, how
many exceed the window and will be split, which tag scheme was detected and what was repaired.
"""

from __future__ import annotations

import json
import logging

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from nerlit.commands.cli import exit_on_user_error
from nerlit.config import CONFIG_DIR
from nerlit.config_checks import validate
from nerlit.data.statistics import PERCENTILES, corpus_stats
from nerlit.experiments.run_dir import ensure_writable_dir
from nerlit.models.pretrained import load_tokenizer, resolve_pretrained

log = logging.getLogger(__name__)


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

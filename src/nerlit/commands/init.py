"""``nerlit init [dir=configs]``: a starter config folder for a user's project.

Two files that build on nerlit's presets, with comments saying what each key does: an experiment
(``experiment=my_experiment``: which corpus, which encoder, how long, which learning rate) and a
corpus (``data=my_corpus``: your files, read by the ``conll`` preset's rules). Hydra finds them
with ``--config-dir configs``. They are named unlike any of nerlit's own options, since on equal
names Hydra takes nerlit's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from nerlit.commands.cli import exit_on_user_error
from nerlit.config import CONFIG_DIR
from nerlit.config_checks import validate
from nerlit.errors import OutputPathError

log = logging.getLogger(__name__)

EXPERIMENT = """\
# @package _global_
# Your experiment, on top of nerlit's defaults:
#   nerlit train --config-dir configs experiment=my_experiment
#   nerlit train --config-dir configs experiment=my_experiment optimizer.lr=3e-5   (one change)
#   nerlit train --config-dir configs experiment=my_experiment -m seed=1,2,3       (a sweep)
# `nerlit train --help` lists every key; a run folder's .hydra/config.yaml shows them all set.
defaults:
  # your corpus: configs/data/my_corpus.yaml (nerlit's own: gmb, conll2003, conll, jsonl, hf)
  - override /data: my_corpus
  # the encoder: minilm, bert-base, roberta-base, distilbert, bert-large, or any hub id or
  # folder with model.pretrained=...
  - override /model: minilm
  # default (CPU or one GPU, bf16 where native), gpu (bf16, token-budget batches, workers), ddp
  - override /trainer: default

tags: [my_experiment]
seed: 42

trainer:
  max_epochs: 3
  # clip the gradient norm (null: off)
  gradient_clip_val: 1.0

optimizer:
  # the model presets bring their own (minilm: 1e-4); set it here to fix it for this experiment
  lr: 1.0e-4

scheduler:
  # share of the steps spent warming up the learning rate
  warmup_ratio: 0.1
"""

CORPUS = """\
# Your corpus: one word per line with its tag in the last column (CoNLL), a blank line between
# sentences, -DOCSTART- lines between documents. Paths are relative to where you run nerlit.
# Every reading option, documented: nerlit's conf/data/conll.yaml, which this builds on.
defaults:
  - conll
  - _self_

train_file: data/train.txt
# null: carved out of train (split_fractions, split_seed); see the run's split.json
val_file: data/dev.txt
test_file: data/test.txt
# the dataset's name in reports, W&B and model cards
name: my_corpus
# auto | iob1 | iob2 | bioes: the tags' scheme in the files
scheme: auto
"""

#: the starter's files, relative to ``dir``
FILES = {
    Path("experiment") / "my_experiment.yaml": EXPERIMENT,
    Path("data") / "my_corpus.yaml": CORPUS,
}


def write_starter(directory: str | Path, overwrite: bool = False) -> list[Path]:
    """Write the starter files into ``directory``; refuse (one line) to replace any of them
    unless ``overwrite``. Returns the files written."""
    directory = Path(directory).expanduser()
    existing = [directory / name for name in FILES if (directory / name).exists()]
    if existing and not overwrite:
        raise OutputPathError(
            f"dir={directory}: {', '.join(map(str, existing))} already exist; keep them, choose "
            f"another dir=, or pass overwrite=true to replace the starter's files"
        )
    written = []
    try:
        for name, text in FILES.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
    except OSError as error:
        raise OutputPathError(
            f"dir={directory}: cannot write there ({error.strerror or error}); choose a folder "
            f"you can write to (dir=...)"
        ) from None
    return written


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="init.yaml")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    validate(cfg, "init")
    written = write_starter(cfg.dir, bool(cfg.overwrite))
    for path in written:
        print(path)
    print(
        f"edit them, then: nerlit train --config-dir {cfg.dir} experiment=my_experiment",
    )


if __name__ == "__main__":
    main()

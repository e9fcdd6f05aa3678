"""``python -m nerlit.evaluate ckpt_path=... data=...``: score a model on a split, as training does.

The split comes from the same ``data`` configs as training (same files, same seeded split), and the
words are tagged by :class:`nerlit.Tagger`, so the scores are those of what users will run. The
sentences' documents go along, so a model trained with document context sees it here too.
"""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from nerlit.cli import exit_on_user_error
from nerlit.config import CONFIG_DIR
from nerlit.data.corpus import load_corpus
from nerlit.data.types import Sentence
from nerlit.evaluation.confusion import write_confusion
from nerlit.evaluation.metrics import entity_scores
from nerlit.evaluation.report import write_report
from nerlit.inference.loading import OptionError, quiet_transformers
from nerlit.inference.tagger import Tagger

log = logging.getLogger(__name__)


def read_split(data: DictConfig, split: str) -> tuple[str, list[Sentence]]:
    """The corpus name and one split's gold sentences, read with the data config's options."""
    if split not in ("train", "val", "test"):
        raise OptionError(f"split={split!r}: expected train, val or test")
    try:
        options = OmegaConf.to_container(data, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as error:
        raise OptionError(
            f"data.{error.key} is required: pass it (data.{error.key}=...) or pick a preset "
            f"(data=gmb, data=conll2003)"
        ) from None
    accepted = inspect.signature(load_corpus).parameters
    corpus, _ = load_corpus(**{k: v for k, v in options.items() if k in accepted})
    return corpus.name, corpus.splits()[split]


def write_predictions(sentences: list[Sentence], pred: list[list[str]], path: Path) -> None:
    """word gold predicted, one per line: the file to grep when a number looks wrong."""
    with path.open("w", encoding="utf-8") as handle:
        for sentence, tags in zip(sentences, pred):
            for word, gold, guess in zip(sentence.words, sentence.tags, tags):
                handle.write(f"{word} {gold} {guess}\n")
            handle.write("\n")


def evaluate(cfg: DictConfig) -> dict:
    """Tag the split, score it, write the report files; returns the scores."""
    quiet_transformers()
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tagger = Tagger.from_config(cfg)
    name, sentences = read_split(cfg.data, cfg.split)
    known = {label[2:] for label in tagger.labels if label != "O"}
    unseen = sorted({t[2:] for s in sentences for t in s.tags if t != "O"} - known)
    if unseen:
        log.warning(
            "types %s are not among the model's labels: all their entities count as missed", unseen
        )
    gold = [list(s.tags) for s in sentences]
    pred = tagger.predict_tags([s.words for s in sentences], [s.document for s in sentences])
    reference = list(cfg.data.get("reference_types") or [])
    scores = entity_scores(gold, pred, cfg.eval_mode, reference)
    scores["checkpoint"] = str(cfg.ckpt_path)
    scores["split"] = cfg.split
    scores["decode"] = cfg.decode
    title = f"{name} {cfg.split}, {cfg.decode} decoding"
    write_report(scores, out, title=title)
    write_confusion(gold, pred, out, cfg.eval_mode, title=f"{name} {cfg.split}: entity types")
    write_predictions(sentences, pred, out / "predictions.conll")
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    log.info("report, confusion.png and predictions.conll in %s", out)
    return scores


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate.yaml")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    """Returns micro F1, so a sweeper could compare checkpoints."""
    scores = evaluate(cfg)
    print(json.dumps({"micro_f1": round(scores["micro"]["f1"], 4)}))
    return scores["micro"]["f1"]


if __name__ == "__main__":
    main()

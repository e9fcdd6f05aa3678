"""``python -m nerlit.evaluate ckpt_path=...``: score a model on held-out data, as training does.

What is scored depends on what ``data`` names (conf/evaluate.yaml):

- nothing: the run's own split, rebuilt from the data settings the checkpoint recorded, so the
  score is the one ``trainer.test`` gave, with no data flags to get wrong;
- ``data.test_file`` (or ``data.val_file``) and no train file: that file alone, read with the
  options given, else inferred from its name;
- ``data=PRESET`` or a train file: the split carved from the same files, with the same seed, as
  training carves it.

A checkpoint also records fingerprints of the sentences it trained on, and scores on those would
flatter the model, so a split holding them is refused unless ``allow_train_overlap=true``; the
count goes to metrics.json. The words are tagged by :class:`nerlit.Tagger`, so the scores are
those of what users will run, and the sentences' documents go along, so a model trained with
document context sees it here too.
"""

from __future__ import annotations

import json
import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from nerlit.commands.cli import exit_on_user_error
from nerlit.config import CONFIG_DIR
from nerlit.config_checks import validate
from nerlit.data.held_out import split_to_score
from nerlit.evaluation.metrics import entity_scores
from nerlit.evaluation.report import write_evaluation
from nerlit.experiments.run_dir import ensure_writable_dir
from nerlit.inference.loading import quiet_transformers
from nerlit.inference.tagger import Tagger
from nerlit.models.checkpoint import read_data_record

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict:
    """Tag the split, score it, write the report files; returns the scores."""
    validate(cfg, "evaluate")  # before the model is loaded or the data read
    quiet_transformers()
    out = ensure_writable_dir(cfg.paths.output_dir, "paths.output_dir")
    record = read_data_record(cfg.ckpt_path)
    tagger = Tagger.from_config(cfg)
    allow = bool(cfg.get("allow_train_overlap"))
    data, overlap = split_to_score(
        cfg.get("data"), cfg.split, record, str(cfg.ckpt_path), tagger.labels, allow
    )
    sentences = data.sentences
    gold = [list(s.tags) for s in sentences]
    pred = tagger.predict_tags([s.words for s in sentences], [s.document for s in sentences])
    reference = data.options.get("reference_types")
    if reference is None:  # a standalone file: the types the model was trained to report
        reference = tagger.settings.get("reference_types")
    scores = entity_scores(gold, pred, cfg.eval_mode, list(reference or []))
    scores["checkpoint"] = str(cfg.ckpt_path)
    scores["split"] = data.split
    scores["decode"] = tagger.decode
    scores["data"] = data.as_record()
    scores["train_overlap"] = overlap
    bootstrap = OmegaConf.to_container(cfg.bootstrap) if cfg.get("bootstrap") else {}
    title = f"{data.name} {data.split}, {tagger.decode} decoding"
    write_evaluation(
        scores, gold, pred, out, title, sentences, cfg.eval_mode, bootstrap, cfg.get("plot")
    )
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    log.info("report, confusion, errors.html and predictions.conll in %s", out)
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

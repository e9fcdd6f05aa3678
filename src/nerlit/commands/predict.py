"""``python -m nerlit.predict ckpt_path=... input=FILE output=FILE``: tag a file with a model."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from nerlit.commands.cli import exit_on_user_error
from nerlit.config import CONFIG_DIR
from nerlit.config_checks import validate
from nerlit.inference.files import PredictSummary, output_format, predict_file
from nerlit.inference.loading import quiet_transformers
from nerlit.inference.tagger import Tagger

log = logging.getLogger(__name__)


def predict(cfg: DictConfig) -> PredictSummary:
    """Load the model the config names and tag ``cfg.input`` into ``cfg.output``."""
    validate(cfg, "predict")  # before the model is loaded or the input read
    quiet_transformers()
    tagger = Tagger.from_config(cfg)
    format = cfg.format or output_format(cfg.output)
    summary = predict_file(
        tagger,
        cfg.input,
        cfg.output,
        format=format,
        chunk_size=cfg.chunk_size,
        progress=cfg.progress,
        encoding=cfg.encoding,
        token_column=cfg.token_column,
    )
    log.info(
        "tagged %d texts, %d entities (%s) -> %s",
        summary.texts,
        summary.entities,
        format,
        cfg.output,
    )
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict.yaml")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()

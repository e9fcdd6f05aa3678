"""``python -m nerlit.export ckpt_path=... output_dir=DIR``: a checkpoint as a HF model folder."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from nerlit.cli import exit_on_user_error
from nerlit.config import CONFIG_DIR
from nerlit.inference.loading import export_huggingface, quiet_transformers

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export.yaml")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    quiet_transformers()
    out = export_huggingface(cfg.ckpt_path, cfg.output_dir, cfg.tokenizer_dir)
    print(f"exported {cfg.ckpt_path} -> {out}")


if __name__ == "__main__":
    main()

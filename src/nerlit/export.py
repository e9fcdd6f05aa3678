"""``python -m nerlit.export ckpt_path=... output_dir=DIR``: a checkpoint as a HF model folder."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from nerlit.cli import exit_on_user_error
from nerlit.config import CONFIG_DIR
from nerlit.inference.loading import export_huggingface, quiet_transformers

log = logging.getLogger(__name__)


def export(cfg: DictConfig) -> Path:
    """Export the model the config names into ``cfg.output_dir`` (see conf/export.yaml)."""
    quiet_transformers()
    return export_huggingface(
        cfg.ckpt_path, cfg.output_dir, cfg.tokenizer_dir, overwrite=bool(cfg.get("overwrite"))
    )


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export.yaml")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    out = export(cfg)
    print(f"exported {cfg.ckpt_path} -> {out}")


if __name__ == "__main__":
    main()

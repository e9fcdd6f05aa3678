"""``nerlit export ckpt_path=... output_dir=DIR [format=hf|onnx] [quantize=int8]``: a checkpoint
as a Hugging Face folder or an ONNX graph (fp32 or int8), with a model card."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from nerlit.cli import exit_on_user_error
from nerlit.config import CONFIG_DIR
from nerlit.errors import OptionError
from nerlit.inference.loading import export_huggingface, quiet_transformers
from nerlit.validation import validate

log = logging.getLogger(__name__)


FORMATS = ("hf", "onnx")


def export(cfg: DictConfig) -> Path:
    """Export the model the config names into ``cfg.output_dir`` (see conf/export.yaml)."""
    validate(cfg, "export")  # before the checkpoint is read
    format = cfg.get("format") or "hf"
    quantize = cfg.get("quantize")
    overwrite = bool(cfg.get("overwrite"))
    if format not in FORMATS:
        raise OptionError(f"format={format!r} is not one of {FORMATS}")
    if quantize and format != "onnx":
        raise OptionError(f"quantize={quantize} needs format=onnx (ONNX Runtime quantizes)")
    quiet_transformers()
    if format == "onnx":
        # imported here: the exporter's modules need the onnx extra, which this checks first
        from nerlit.inference.onnx_export import export_onnx

        return export_onnx(
            cfg.ckpt_path, cfg.output_dir, cfg.tokenizer_dir, quantize=quantize, overwrite=overwrite
        )
    return export_huggingface(cfg.ckpt_path, cfg.output_dir, cfg.tokenizer_dir, overwrite=overwrite)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export.yaml")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    out = export(cfg)
    print(f"exported {cfg.ckpt_path} -> {out}")


if __name__ == "__main__":
    main()

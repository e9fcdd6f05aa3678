"""``nerlit export ckpt_path=... output_dir=DIR [format=hf|onnx] [quantize=int8] [push_to=ID]``:
a checkpoint as a Hugging Face folder or an ONNX graph (fp32 or int8), with a model card, and
uploaded to the Hugging Face Hub as model repo ``ID`` (``ORG/NAME``) when asked."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import hydra
from omegaconf import DictConfig, ListConfig, OmegaConf

from nerlit.commands.cli import exit_on_user_error
from nerlit.config import CONFIG_DIR
from nerlit.config_checks import validate
from nerlit.errors import OptionError
from nerlit.inference.card import CardMetadata
from nerlit.inference.hf_export import export_huggingface
from nerlit.inference.hub import check_push, push_folder
from nerlit.inference.loading import quiet_transformers

log = logging.getLogger(__name__)


EXPORT_FORMATS = ("hf", "onnx")
#: a Hub license id (lowercase: ``mit``, ``apache-2.0``, ``cc-by-4.0``, ``other``, ``unknown``)
_LICENSE = re.compile(r"[a-z0-9][a-z0-9.+-]*")
#: an ISO 639-1/2/3 code, or one of the Hub's special values
_LANGUAGE = re.compile(r"[a-z]{2,3}|multilingual|code")


def card_metadata(cfg: DictConfig) -> CardMetadata:
    """``license``, ``language`` and ``push_to`` of the config, checked: the Hub rejects a card
    with a malformed license or language only when it is pushed, after the whole export."""
    license = str(cfg.get("license") or "unknown")
    if not _LICENSE.fullmatch(license):
        raise OptionError(
            f"license={license!r}: expected a Hub license id (mit, apache-2.0, cc-by-4.0, other, "
            f"unknown...: https://huggingface.co/docs/hub/repositories-licenses)"
        )
    language = cfg.get("language")
    if isinstance(language, ListConfig):
        language = list(OmegaConf.to_container(language))
    for code in [language] if isinstance(language, str) else language or []:
        if not isinstance(code, str) or not _LANGUAGE.fullmatch(code):
            raise OptionError(
                f"language={code!r}: expected an ISO 639 code (en, de, fra...), a list of them, "
                f"multilingual, or null (the corpus's own where nerlit knows it)"
            )
    return CardMetadata(license=license, language=language or None, repo_id=cfg.get("push_to"))


def export(cfg: DictConfig) -> Path:
    """Export the model the config names into ``cfg.output_dir`` (see conf/export.yaml), then
    push the folder to ``cfg.push_to`` on the Hub when given."""
    validate(cfg, "export")  # before the checkpoint is read
    format = cfg.get("format") or "hf"
    quantize = cfg.get("quantize")
    overwrite = bool(cfg.get("overwrite"))
    if format not in EXPORT_FORMATS:
        raise OptionError(f"format={format!r} is not one of {EXPORT_FORMATS}")
    if quantize and format != "onnx":
        raise OptionError(f"quantize={quantize} needs format=onnx (ONNX Runtime quantizes)")
    card = card_metadata(cfg)
    push_to = cfg.get("push_to")
    if push_to:
        check_push(push_to)  # offline or a malformed id: said now, not after the export
    quiet_transformers()
    if format == "onnx":
        # imported here: the exporter's modules need the onnx extra, which this checks first
        from nerlit.inference.onnx_export import export_onnx

        out = export_onnx(
            cfg.ckpt_path,
            cfg.output_dir,
            cfg.tokenizer_dir,
            quantize=quantize,
            overwrite=overwrite,
            card=card,
        )
    else:
        out = export_huggingface(
            cfg.ckpt_path, cfg.output_dir, cfg.tokenizer_dir, overwrite=overwrite, card=card
        )
    if push_to:
        url = push_folder(out, push_to, private=bool(cfg.get("push_private")))
        print(f"pushed {out} -> {url}")
    return out


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export.yaml")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    out = export(cfg)
    print(f"exported {cfg.ckpt_path} -> {out}")


if __name__ == "__main__":
    main()

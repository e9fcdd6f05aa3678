"""``nerlit export format=hf``: a checkpoint as a standard Hugging Face model folder."""

from __future__ import annotations

import logging
from pathlib import Path

from nerlit.inference.card import CardMetadata, write_model_card
from nerlit.inference.loading import load_model
from nerlit.inference.outputs import fresh_folder

log = logging.getLogger(__name__)


def export_huggingface(
    path: str | Path,
    output_dir: str | Path,
    tokenizer_dir: str | Path | None = None,
    overwrite: bool = False,
    card: CardMetadata | None = None,
) -> Path:
    """Write a standard Hugging Face folder (config with id2label/label2id, weights, tokenizer;
    casing and CRF tensors in ``nerlit.safetensors``; a model card in ``README.md``, with
    ``card``'s license, language and Hub id).

    ``Tagger.load(output_dir)`` loads all of it; ``transformers.pipeline("token-classification",
    model=output_dir)`` loads it offline and runs the same network for a model without casing
    features (a CRF's transitions it ignores, decoding by argmax). ``output_dir`` must be new or
    empty, or is replaced whole with ``overwrite`` (:func:`nerlit.inference.outputs.fresh_folder`).
    """
    with fresh_folder(output_dir, overwrite) as folder:
        loaded = load_model(path, tokenizer_dir)
        loaded.network.save_pretrained(folder, **loaded.settings)
        loaded.tokenizer.save_pretrained(folder)
        write_model_card(folder, loaded, format="hf", metadata=card)
    out = Path(output_dir).expanduser()
    if loaded.network.casing is not None:
        log.warning(
            "%s was trained with model.case_features: Tagger.load(%s) uses them, but "
            "transformers.pipeline cannot compute them and runs a different network (worse "
            "entities); for a model served through the pipeline, train with "
            "model.case_features=false",
            path,
            out,
        )
    log.info("exported %s -> %s (%d labels)", path, out, len(loaded.labels))
    return out

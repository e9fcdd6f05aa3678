"""Find a model by hub id without ever hanging on a network that is not there.

Order: an explicit local directory, then ``models_dir/<id>`` and ``models_dir/<last part of id>``,
then the Hugging Face cache, then the hub, but only after a 3-second reachability probe; with no
network, the error says which model, where nerlit looked and how to point at a local copy.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer

from nerlit.errors import ModelNotFoundError

HUB_HOST = "huggingface.co"
# Model types whose tokenizers need a prefix space to tokenize pre-split words.
_PREFIX_SPACE_TYPES = {"roberta", "deberta", "deberta-v2", "longformer", "bart", "gpt2", "mpnet"}


@dataclass
class ResolvedModel:
    """Where a model's files are: a local directory, or a hub id when the hub is reachable."""

    name: str
    location: str
    looked_in: list[str] = field(default_factory=list)

    @property
    def is_local(self) -> bool:
        return Path(self.location).is_dir()


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False") or os.environ.get(
        "TRANSFORMERS_OFFLINE", "0"
    ) not in ("0", "", "false", "False"):
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _cached_snapshot(name: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, local_files_only=True)
    except Exception:  # noqa: BLE001 - any failure means "not in the cache"
        return None


def resolve_pretrained(
    name: str, pretrained: str | None = None, models_dir: str | None = None
) -> ResolvedModel:
    """Turn a hub id into a location, preferring local copies; fail fast when there is none."""
    if pretrained:
        path = Path(pretrained).expanduser()
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"model.pretrained={pretrained!r} is not a model directory (no config.json there). "
                f"Point it at a folder made by save_pretrained() or by "
                f"`hf download {name} --local-dir DIR`."
            )
        return ResolvedModel(name, str(path.resolve()), [str(path)])
    looked_in: list[str] = []
    if models_dir:
        for candidate in dict.fromkeys(
            [Path(models_dir) / name, Path(models_dir) / name.split("/")[-1]]
        ):
            looked_in.append(str(candidate))
            if (candidate / "config.json").is_file():
                return ResolvedModel(name, str(candidate.resolve()), looked_in)
    looked_in.append("the Hugging Face cache")
    cached = _cached_snapshot(name)
    if cached and (Path(cached) / "config.json").is_file():
        return ResolvedModel(name, cached, looked_in)
    looked_in.append(f"the hub ({HUB_HOST})")
    if _hub_reachable():
        return ResolvedModel(name, name, looked_in)
    raise ModelNotFoundError(
        f"Cannot load model {name!r}: no local copy and the Hugging Face hub is unreachable "
        f"(offline). Looked in: {', '.join(looked_in)}. Fix: download it where there is a network "
        f"(`hf download {name} --local-dir DIR`) and run with model.pretrained=DIR, or put it "
        f"under paths.models_dir (NERLIT_MODELS_DIR=DIR), or train a random-init encoder with "
        f"model.from_scratch=true model.pretrained=DIR_WITH_CONFIG_AND_TOKENIZER."
    )


def load_tokenizer(location: str):
    """The fast tokenizer; prefix-space models get ``add_prefix_space`` for pre-split words."""
    config = AutoConfig.from_pretrained(location)
    kwargs = {"add_prefix_space": True} if config.model_type in _PREFIX_SPACE_TYPES else {}
    return AutoTokenizer.from_pretrained(location, use_fast=True, **kwargs)

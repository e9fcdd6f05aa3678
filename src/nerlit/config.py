"""Hydra/OmegaConf glue shared by the entry points: config location and custom resolvers."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

#: The repository root (``src/nerlit/config.py`` -> repo); ``conf/`` and ``outputs/`` live there.
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = str(REPO_ROOT / "conf")

if not OmegaConf.has_resolver("nerlit_root"):
    OmegaConf.register_new_resolver("nerlit_root", lambda: str(REPO_ROOT))


def configure_wandb_mode() -> str:
    """Offline unless the user configured W&B: online with no network blocks ~100 s, then dies."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    netrc = Path.home() / ".netrc"
    logged_in = netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")
    if not (os.environ.get("WANDB_API_KEY") or logged_in):
        os.environ["WANDB_MODE"] = "offline"
    return os.environ.get("WANDB_MODE", "online")

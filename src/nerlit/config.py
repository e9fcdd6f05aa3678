"""Hydra/OmegaConf glue shared by the entry points: where the configs are, custom resolvers.

The configs ship inside the package (``conf/`` of the repo is the package ``nerlit.conf``), so an
installed wheel and a checkout compose the same files. Everything a run writes or reads by default
is relative to the directory the user runs in, never to where nerlit is installed.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from omegaconf import OmegaConf

#: nerlit's own config folder: ``<site-packages>/nerlit/conf`` or, editable, ``<repo>/conf``.
CONFIG_DIR = str(Path(str(files("nerlit.conf"))).resolve())

if not OmegaConf.has_resolver("nerlit_cwd"):
    # the user's project: where they ran the command (Hydra never changes it: job.chdir=false)
    OmegaConf.register_new_resolver("nerlit_cwd", lambda: os.getcwd())


def configure_wandb_mode() -> str:
    """Offline unless the user configured W&B: online with no network blocks ~100 s, then dies."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    netrc = Path.home() / ".netrc"
    logged_in = netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")
    if not (os.environ.get("WANDB_API_KEY") or logged_in):
        os.environ["WANDB_MODE"] = "offline"
    return os.environ.get("WANDB_MODE", "online")

"""Hydra/OmegaConf glue shared by the entry points: where the configs are, and the custom
resolvers (the user's folder, unique run names, the precision a device computes natively).

The configs ship inside the package (``conf/`` of the repo is the package ``nerlit.conf``), so an
installed wheel and a checkout compose the same files. Everything a run writes or reads by default
is relative to the directory the user runs in, never to where nerlit is installed.
"""

from __future__ import annotations

import logging
import os
import secrets
from importlib.resources import files
from pathlib import Path

from omegaconf import OmegaConf

log = logging.getLogger(__name__)

#: nerlit's own config folder: ``<site-packages>/nerlit/conf`` or, editable, ``<repo>/conf``.
CONFIG_DIR = str(Path(str(files("nerlit.conf"))).resolve())

if not OmegaConf.has_resolver("nerlit_cwd"):
    # the user's project: where they ran the command (Hydra never changes it: job.chdir=false)
    OmegaConf.register_new_resolver("nerlit_cwd", lambda: os.getcwd())

if not OmegaConf.has_resolver("nerlit_unique"):
    # A run directory named by the second alone is shared by two runs started in the same second
    # (two terminals, a job array): their configs, checkpoints and metrics would overwrite each
    # other. Six random hex digits tell them apart. use_cache: resolved once per config, and
    # Hydra copies the cache into each sweep job's config (as it does for ${now:}), so a run,
    # its jobs and its logs all see one value.
    OmegaConf.register_new_resolver("nerlit_unique", lambda: secrets.token_hex(3), use_cache=True)


def auto_precision() -> str:
    """``bf16-mixed`` where the device computes bf16 natively, else ``32-true``.

    bf16 autocast is what makes training fast on GPUs and on CPUs with AVX512-BF16/AMX; on a CPU
    without them (AVX2-only, e.g. many AMD EPYC hosts) oneDNN emulates it, and a MiniLM step took
    ~25 s against 0.5 s in fp32. The default trainer therefore picks per machine, as ``Tagger``'s
    ``precision=auto`` does; ``trainer.precision=...`` still chooses explicitly.
    """
    import torch

    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "32-true"


if not OmegaConf.has_resolver("nerlit_precision"):
    OmegaConf.register_new_resolver("nerlit_precision", auto_precision, use_cache=True)

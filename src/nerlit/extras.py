"""Optional features and the extra that installs each: checked when a run chooses the feature.

Core nerlit trains, tags and logs to CSV and W&B; TensorBoard, plots, Optuna search and SLURM
launching are extras (``pip install "nerlit[optuna]"``), so a user's environment is not pinned by
packages it never uses. Nothing imports an optional package at module import time; a run that asks
for a missing one stops with one line naming the exact install command.
"""

from __future__ import annotations

import importlib.util

from nerlit.errors import MissingExtraError

#: feature -> (module that must import, extra that installs it)
EXTRAS = {
    "logger=tensorboard": ("tensorboard", "tensorboard"),
    "hparams_search=optuna": ("optuna", "optuna"),
    "hydra/launcher=slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "the confusion-matrix PNG (plot=true)": ("matplotlib", "plots"),
    "nerlit audit": ("cleanlab", "audit"),
    "nerlit serve": ("uvicorn", "serve"),
    # the exporter (torch.onnx's dynamo exporter writes through onnxscript) ...
    "format=onnx": ("onnxscript", "onnx"),
    # ... and ONNX Runtime, which checks each export and runs it in Tagger
    "backend=onnx": ("onnxruntime", "onnx"),
    # a saved Hugging Face dataset as the corpus (nerlit.data.hf_datasets)
    "data=hf": ("datasets", "hf"),
    "data.format=datasets": ("datasets", "hf"),
}

#: logger/callback ``_target_`` classes that need an extra, by the feature that names them
TARGETS = {"lightning.pytorch.loggers.TensorBoardLogger": "logger=tensorboard"}


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def require(feature: str) -> None:
    """Stop with the install command when ``feature``'s extra is missing."""
    module, extra = EXTRAS[feature]
    if not installed(module):
        raise MissingExtraError(f'{feature} needs the {extra} extra: pip install "nerlit[{extra}]"')


def require_for_overrides(overrides: list[str]) -> None:
    """Check command-line choices before Hydra composes (a missing plugin's config would
    otherwise end in Hydra's MissingConfigException)."""
    for feature in EXTRAS:
        if any(o.strip().lstrip("+~") == feature for o in overrides):
            require(feature)

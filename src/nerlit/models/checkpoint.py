"""The nerlit checkpoint file: its extra keys, and the one safe way to read it.

A Lightning checkpoint is a pickle, and unpickling an arbitrary object runs whatever code the file
names: a ``.ckpt`` from the internet, a shared drive or an e-mail could run code on the machine of
whoever evaluates it. Every reader here unpickles with ``weights_only=True``: torch's restricted
unpickler builds tensors, containers and primitives only, which is all that a nerlit checkpoint
holds (weights, optimizer and scheduler states, hyperparameters, loop counters, the tokenizer's
files as bytes, the data record). A file that names any other object is refused in one line,
before any of it runs; ``nerlit.train`` passes ``weights_only=True`` to Lightning too.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch

from nerlit.errors import ModelLoadError

#: where ``NerModule.on_save_checkpoint`` puts the run's data record (``data_record``)
DATA_KEY = "nerlit_data"
#: the tokenizer's files, name -> bytes, so that a checkpoint alone can tag text
TOKENIZER_KEY = "nerlit_tokenizer_files"

_FIX = (
    "Point it at a checkpoint (outputs/train/runs/*/checkpoints/*.ckpt) or at a folder "
    "written by `nerlit export`."
)


def load_checkpoint_file(path: str | Path) -> dict:
    """The checkpoint's contents, unpickled with torch's restricted (weights-only) unpickler.

    Memory-mapped where the file is in torch's zip format, so that a check reading a few keys
    does not read every tensor; the legacy format cannot be mapped and is read whole.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such checkpoint file or model folder. {_FIX}")
    warnings.filterwarnings("ignore", message="Detected pickle protocol")  # a refusal follows
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as error:
        raise ModelLoadError(_unsafe(path, error)) from None
    except RuntimeError as error:  # not a zip file: the legacy format, which cannot be mapped
        if "mmap" not in str(error) and "zip" not in str(error):
            raise ModelLoadError(_unreadable(path, error)) from None
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as inner:
            raise ModelLoadError(_unsafe(path, inner)) from None
        except Exception as inner:  # noqa: BLE001 - pickle/zip errors have many types
            raise ModelLoadError(_unreadable(path, inner)) from None
    except Exception as error:  # noqa: BLE001 - pickle/zip errors have many types
        raise ModelLoadError(_unreadable(path, error)) from None
    if not isinstance(checkpoint, dict):
        raise ModelLoadError(f"{path}: not a Lightning checkpoint (no state_dict). {_FIX}")
    return checkpoint


def read_checkpoint(path: str | Path) -> dict:
    """A nerlit Lightning checkpoint as a dict, or one line saying what the file is not."""
    path = Path(path).expanduser()
    checkpoint = load_checkpoint_file(path)
    if "state_dict" not in checkpoint:
        raise ModelLoadError(f"{path}: not a Lightning checkpoint (no state_dict). {_FIX}")
    hparams = checkpoint.get("hyper_parameters") or {}
    if "encoder_config" not in hparams or "labels" not in hparams:
        raise ModelLoadError(
            f"{path}: not a nerlit checkpoint (no encoder_config/labels in its hyper_parameters)."
            f" {_FIX}"
        )
    return checkpoint


def read_data_record(path: str | Path) -> dict | None:
    """The data record a nerlit checkpoint keeps, else None (an exported folder has none)."""
    path = Path(path).expanduser()
    if not path.is_file():
        return None
    return load_checkpoint_file(path).get(DATA_KEY)


#: the monitored metric whose ``ModelCheckpoint`` state holds a checkpoint's own validation score
VAL_F1 = "val/f1"


def training_progress(checkpoint: dict) -> dict:
    """How far training had got when Lightning saved ``checkpoint``, from its own counters.

    A run's config says how long it *may* train (``max_epochs``, ``max_steps``); early stopping,
    a crash or a best checkpoint from an earlier epoch all stop short of that, so a model card
    states these instead. ``global_step``: optimizer steps; ``epochs``: epochs whose batches all
    ran; ``batches``: batches of the next epoch that ran before the save (a mid-epoch
    validation); ``val_f1``: the validation F1 the checkpoint callback saw for these weights,
    None where the checkpoint keeps no callback state (a weights-only best checkpoint).
    """
    fit = (checkpoint.get("loops") or {}).get("fit_loop") or {}
    epochs = ((fit.get("epoch_progress") or {}).get("total") or {}).get("processed")
    batches = fit.get("epoch_loop.batch_progress") or {}
    mid_epoch = batches.get("is_last_batch") is False
    into_epoch = (batches.get("current") or {}).get("completed", 0) if mid_epoch else 0
    val_f1 = None
    for state in (checkpoint.get("callbacks") or {}).values():
        if isinstance(state, dict) and state.get("monitor") == VAL_F1:
            score = state.get("current_score")
            val_f1 = None if score is None else float(score)
    return {
        "global_step": int(checkpoint.get("global_step") or 0),
        "epochs": None if epochs is None else int(epochs),
        "batches": int(into_epoch or 0),
        "val_f1": val_f1,
    }


def _unsafe(path: Path, error: Exception) -> str:
    """The restricted unpickler's refusal: an object it will not build (code could run), or
    bytes that are no pickle at all (a CSV, a truncated file)."""
    text = str(error)
    if "GLOBAL" not in text:
        reason = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()
        return _unreadable(path, ValueError(reason[0] if reason else "not a torch checkpoint"))
    found = text.split("GLOBAL ", 1)[1].split(" ", 1)[0]
    what = f" ({found})" if found else ""
    return (
        f"{path}: refused: the checkpoint holds objects other than tensors and plain values"
        f"{what}, and unpickling them could run code. nerlit writes none; load only checkpoints "
        f"that nerlit train wrote, or export the model (nerlit export) where you trust the file."
    )


def _unreadable(path: Path, error: Exception) -> str:
    lines = str(error).strip().splitlines()
    reason = lines[0] if lines else type(error).__name__
    return f"{path}: cannot be read as a checkpoint ({reason}). {_FIX}"

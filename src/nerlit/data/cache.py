"""The read and tokenized corpus, cached on disk by what decides it: a run's second start skips
reading, checking and tokenizing (GMB: ~15 s of a CPU's ~25 s start-up).

Sweeps, reruns and resumed runs read the same files with the same tokenizer again and again.
The key is a hash of every input that shapes the result: each corpus file's resolved path and
bytes (a saved dataset's folder: every file in it), the reading and windowing options, the
tokenizer's own serialization and nerlit's version, so an edited file, another option or another
tokenizer is a miss, never a stale hit.
The path is part of it because the entry records where the corpus came from (``split.json``'s
sources, the corpus name taken from the file's stem): the same bytes in another folder are read
again rather than reported as the first folder's files. The entry is
plain data (JSON for sentences and the reading report, an ``.npz`` of integer arrays for the
windows, loaded without pickle), written to a temporary folder and renamed into place, so two
runs starting at once never read half an entry. ``data.cache=false`` turns it off;
``NERLIT_CACHE_DIR`` moves it (default ``~/.cache/nerlit``). Hand-written: the datasets library
caches its own Arrow tables, not a corpus read by nerlit's readers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from nerlit import __version__
from nerlit.data.encoding import Window
from nerlit.data.types import Corpus, Sentence

log = logging.getLogger(__name__)

#: bump when the entry's layout changes
LAYOUT = 2
_WINDOW_FIELDS = ("input_ids", "labels", "word_index", "casings")
_PER_CALL = ("padding", "truncation")


def cache_root() -> Path:
    return Path(os.environ.get("NERLIT_CACHE_DIR", Path.home() / ".cache" / "nerlit")) / "corpus"


def _file_digest(path: str) -> str:
    """The file's resolved path and a hash of its bytes. A folder (a saved Hugging Face dataset:
    Arrow files, ``state.json``, ``dataset_info.json``, ``dataset_dict.json``) hashes each of its
    files' names and bytes, so a re-saved, added or removed split is a miss."""
    resolved = Path(path).expanduser().resolve()
    digest = hashlib.blake2b(digest_size=16)
    if resolved.is_dir():
        files = sorted(p for p in resolved.rglob("*") if p.is_file())
        if not files:
            raise FileNotFoundError(resolved)  # no entry for an empty folder: reading says why
    else:
        files = [resolved]
    for file in files:
        if file != resolved:
            name = file.relative_to(resolved).as_posix()
            digest.update(f"{name}\0{file.stat().st_size}\0".encode())
        with open(file, "rb") as handle:
            for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                digest.update(block)
    return f"{resolved}:{digest.hexdigest()}"


def cache_key(options: Mapping, tokenizer) -> str | None:
    """The entry's name, or None where a corpus file cannot be read (reading then says why)."""
    try:
        files = {
            k: _file_digest(v) for k in ("train_file", "val_file", "test_file") if (v := options[k])
        }
    except OSError:
        return None
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # its padding and truncation are per-call state that transformers changes while it
        # tokenizes; what splits words into ids is the rest
        serialized = json.loads(backend.to_str())
        vocabulary = json.dumps({k: v for k, v in serialized.items() if k not in _PER_CALL})
    else:
        vocabulary = repr(sorted(tokenizer.get_vocab().items()))
    described = {
        "layout": LAYOUT,
        "nerlit": __version__,
        "files": files,
        "options": {k: v for k, v in options.items() if k not in files},
        "tokenizer": hashlib.blake2b(vocabulary.encode(), digest_size=16).hexdigest(),
        "specials": [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.unk_token_id],
    }
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def save_entry(key: str, state: dict) -> None:
    """``state``: corpus, report (a dict), labels, mapped_unknown, windows, windowed,
    with_context, as ``NerDataModule.setup`` made them. Failing to write only costs speed."""
    target = cache_root() / key
    if target.exists():
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=target.parent))
        corpus: Corpus = state["corpus"]
        meta = {
            "name": corpus.name,
            "sources": corpus.sources,
            "splits": {
                split: [[s.words, s.tags, s.id, s.document] for s in sentences]
                for split, sentences in corpus.splits().items()
            },
            **{k: state[k] for k in ("report", "labels", "mapped_unknown", "windowed")},
            "with_context": state["with_context"],
        }
        (staging / "corpus.json").write_text(json.dumps(meta))
        arrays = {}
        for split, windows in state["windows"].items():
            arrays[f"{split}.lengths"] = np.array([len(w) for w in windows], dtype=np.int64)
            arrays[f"{split}.sentence"] = np.array([w.sentence_index for w in windows])
            arrays[f"{split}.context"] = np.array(
                [w.context_tokens for w in windows], dtype=np.int64
            ).reshape(-1, 2)
            for name in _WINDOW_FIELDS:
                values = [v for w in windows for v in getattr(w, name)]
                arrays[f"{split}.{name}"] = np.array(values, dtype=np.int32)
        np.savez(staging / "windows.npz", **arrays)
        try:
            staging.rename(target)
        except OSError:  # another run wrote it meanwhile: theirs is the same
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as error:
        log.warning(
            "corpus cache: could not write %s (%s); the next run reads again", target, error
        )


def load_entry(key: str) -> dict | None:
    """What :func:`save_entry` stored, or None (a miss, or an entry that does not read)."""
    folder = cache_root() / key
    if not folder.is_dir():
        return None
    try:
        meta = json.loads((folder / "corpus.json").read_text())
        with np.load(folder / "windows.npz", allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError) as error:
        log.warning("corpus cache: %s unreadable (%s); reading the corpus instead", folder, error)
        return None
    splits = {
        split: [Sentence(tuple(w), tuple(t), i, d) for w, t, i, d in rows]
        for split, rows in meta["splits"].items()
    }
    corpus = Corpus(**splits, name=meta["name"], sources=meta["sources"])
    windows = {}
    for split in splits:
        ends = np.cumsum(arrays[f"{split}.lengths"]).tolist()
        columns = {name: arrays[f"{split}.{name}"].tolist() for name in _WINDOW_FIELDS}
        sentence = arrays[f"{split}.sentence"].tolist()
        context = arrays[f"{split}.context"].tolist()
        starts = [0, *ends[:-1]]
        windows[split] = [
            Window(
                *(columns[name][a:b] for name in ("input_ids", "labels", "word_index")),
                sentence[i],
                columns["casings"][a:b],
                tuple(context[i]),
            )
            for i, (a, b) in enumerate(zip(starts, ends))
        ]
    return {
        "corpus": corpus,
        "windows": windows,
        **{k: meta[k] for k in ("report", "labels", "mapped_unknown", "windowed", "with_context")},
        "folder": folder,
    }

"""Shared fixtures: small corpora written per test, the cased tokenizer, composed configs."""

from __future__ import annotations

import os
import random
import tempfile
import threading
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from hydra_plugins.nerlit_optuna_sweeper import register_with_hydra
from nerlit.config import CONFIG_DIR

#: the checkout the tests run from; ../shared beside it holds what the hubs would give
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NERLIT_SHARED_DIR", REPO_ROOT.parent / "shared"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the corpus cache (nerlit.data.cache) of this test session, not the user's ~/.cache
os.environ.setdefault("NERLIT_CACHE_DIR", tempfile.mkdtemp(prefix="nerlit-cache-"))
# where the presets find corpora and models (the Makefile sets the same)
os.environ.setdefault("NERLIT_DATA_DIR", str(SHARED / "data"))
os.environ.setdefault("NERLIT_MODELS_DIR", str(SHARED / "models"))
CASED_TOKENIZER = SHARED / "models" / "bert-base-cased-tokenizer"


def _checkout_runs() -> set[Path]:
    return set((REPO_ROOT / "outputs").glob("*/*/*"))


@pytest.fixture(scope="session", autouse=True)
def no_run_folders_in_the_checkout():
    """Tests write their runs under their own tmp_path. A run folder that appears in the
    checkout's ``outputs/`` during the session is a test that ran a verb in the repository's
    folder without ``hydra.run.dir`` (two refused ``nerlit.fit`` calls and a missing-extra run
    once left empty ones there); it fails the session's last test."""
    before = _checkout_runs()
    yield
    written = sorted(map(str, _checkout_runs() - before))
    assert not written, f"tests wrote run folders into the checkout: {written}"


_PEOPLE = ["Angela Merkel", "John Smith", "Maria", "Obama"]
_PLACES = ["Berlin", "New York", "Iraq", "Paris"]
_ORGS = ["the United Nations", "NATO", "Reuters"]


def make_sentences(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """Sentences with per/geo/org/tim entities in IOB2: enough structure for a tiny model."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [
            (rng.choice(_PEOPLE), "per"),
            (rng.choice(["visited", "left", "criticized"]), None),
            (rng.choice(_PLACES), "geo"),
            ("with", None),
            (rng.choice(_ORGS).replace("the ", ""), "org"),
            ("on", None),
            (rng.choice(["Monday", "Friday"]), "tim"),
            (".", None),
        ]
        words, tags = [], []
        for text, kind in parts:
            for i, word in enumerate(text.split()):
                words.append(word)
                tags.append("O" if kind is None else ("B-" if i == 0 else "I-") + kind)
        out.append((words, tags))
    return out


def write_gmb_csv(path: Path, sentences, encoding: str = "cp1252") -> Path:
    """The Kaggle GMB layout: 'Sentence #' on each sentence's first row only, CRLF lines."""
    rows = ["Sentence #,Word,POS,Tag"]
    for i, (words, tags) in enumerate(sentences, start=1):
        for j, (w, t) in enumerate(zip(words, tags)):
            cell = f'"{w}"' if "," in w else w
            rows.append(f"{'Sentence: ' + str(i) if j == 0 else ''},{cell},NN,{t}")
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode(encoding))
    return path


def write_conll(path: Path, sentences, iob1: bool = False, docstart: bool = True) -> Path:
    lines = ["-DOCSTART- -X- O O", ""] if docstart else []
    for words, tags in sentences:
        for i, (w, t) in enumerate(zip(words, tags)):
            if iob1 and t.startswith("B-") and not (i and tags[i - 1][2:] == t[2:]):
                t = "I-" + t[2:]
            lines.append(f"{w} NN O {t}")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def cased_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(CASED_TOKENIZER)


@pytest.fixture
def gmb_file(tmp_path: Path) -> Path:
    return write_gmb_csv(tmp_path / "gmb.csv", make_sentences(120))


def compose_train(
    overrides: list[str], output_dir: Path | None = None, with_hydra: bool = False
) -> DictConfig:
    """Compose conf/train.yaml as the CLI would; ``paths.output_dir`` replaces Hydra's run dir."""
    register_with_hydra()  # as nerlit.train.main does: hparams_search=optuna composes
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("train.yaml", overrides=overrides, return_hydra_config=with_hydra)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir)
    return cfg


def tiny_overrides(gmb: Path) -> list[str]:
    return [
        "model=tiny",
        "debug=fast",
        f"data.train_file={gmb}",
        "data.batch_size=8",
        "data.eval_batch_size=16",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "logger=csv",
    ]


_TINY_CHECKPOINTS: dict[str, Path] = {}


def tiny_checkpoint(
    factory: pytest.TempPathFactory, head: str = "linear", case_features: bool = False
) -> Path:
    """The tests' one tiny trained checkpoint per variant: a seeded 4-step tiny-BERT training,
    made once per test session (the cache) and shared by every test file that tags text."""
    key = f"{head}-casing" if case_features else head
    if key not in _TINY_CHECKPOINTS:
        directory = factory.mktemp(f"tiny-{key}")
        csv = write_gmb_csv(directory / "gmb.csv", make_sentences(60))
        overrides = [
            "model=tiny",
            "debug=fast",
            f"data.train_file={csv}",
            "data.batch_size=8",
            "data.eval_batch_size=16",
            "trainer.accelerator=cpu",
            "logger=none",
            "test=false",
            f"model.head={head}",
            f"model.case_features={case_features}",
        ]
        from nerlit.commands.train import train

        summary = train(compose_train(overrides, directory / "run"))
        _TINY_CHECKPOINTS[key] = Path(summary["best_checkpoint"])
    return _TINY_CHECKPOINTS[key]


class RecordingBackend:
    """A ``Tagger`` backend that notes, per batch it runs, the thread and the windows' lengths."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.calls: list[tuple[int, list[int]]] = []
        self.concurrent_batches = backend.concurrent_batches

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    def __call__(self, input_ids, attention_mask, casing_ids):
        self.calls.append((threading.get_ident(), attention_mask.sum(1).tolist()))
        return self.backend(input_ids, attention_mask, casing_ids)

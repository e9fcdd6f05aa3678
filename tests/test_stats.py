"""python -m nerlit.stats: per-split counts, subword percentiles, windows, scheme."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, make_sentences, write_conll


def test_stats_cli(tmp_path: Path):
    sentences = make_sentences(30)
    sentences.append((["word"] * 300, ["O"] * 300))  # longer than a 64-subword window
    train = write_conll(tmp_path / "train.txt", sentences, iob1=True)
    run = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nerlit.stats",
            "data=conll",
            f"data.train_file={train}",
            "data.max_length=64",
            "model=tiny",
            f"hydra.run.dir={run}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "scheme iob1" in result.stdout and "entities per" in result.stdout
    stats = json.loads((run / "stats.json").read_text())
    assert stats["scheme"] == "iob1"
    splits = stats["splits"]
    assert sum(s["sentences"] for s in splits.values()) == 31
    assert sum(s["windowed_sentences"] for s in splits.values()) == 1
    assert sum(s["entities"].get("per", 0) for s in splits.values()) == 30
    longest = max(s["subword_length_percentiles"]["p100"] for s in splits.values())
    assert longest == 302  # 300 one-piece words + [CLS] + [SEP]


def test_stats_cli_bad_file_is_one_clear_line(tmp_path: Path):
    bad = tmp_path / "bad.txt"
    bad.write_text("EU B-ORG\nrejects\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nerlit.stats",
            "data=conll",
            f"data.train_file={bad}",
            "model=tiny",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"nerlit: {bad}, line 2: 1 columns" in result.stderr
    assert result.stderr.count(str(bad)) == 1, "one error, said once"
    assert "Traceback" not in result.stderr


def test_stats_builds_no_windows_and_agrees_with_setup(tmp_path: Path, monkeypatch):
    """stats used to set the DataModule up, holding every window of the corpus (20 MB of CoNLL
    peaked at 0.9-1.1 GB); it now keeps a histogram per split, with the same numbers."""
    import numpy as np
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from nerlit.config import CONFIG_DIR
    from nerlit.data.encoding import SubwordEncoder
    from nerlit.data.statistics import PERCENTILES, corpus_stats
    from nerlit.models.pretrained import load_tokenizer, resolve_pretrained

    sentences = make_sentences(50)
    sentences += [(["word"] * n, ["O"] * n) for n in (60, 130, 300)]  # 1, 3 and 6 windows
    train = write_conll(tmp_path / "train.txt", sentences)
    overrides = ["data=conll", f"data.train_file={train}", "data.max_length=64", "model=tiny"]
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("stats.yaml", overrides=overrides)
    resolved = resolve_pretrained(cfg.model.name, cfg.model.pretrained, cfg.paths.models_dir)
    tokenizer = load_tokenizer(resolved.location)
    reference = instantiate(cfg.data, tokenizer=tokenizer)
    reference.setup()

    def no_windows(*args, **kwargs):
        raise AssertionError("stats built windows")

    monkeypatch.setattr(SubwordEncoder, "encode", no_windows)
    stats = corpus_stats(instantiate(cfg.data, tokenizer=tokenizer))
    encoder = reference.make_encoder()
    for split, sentences in reference.corpus.splits().items():
        got = stats["splits"][split]
        assert got["sentences"] == len(sentences)
        assert got["windowed_sentences"] == reference.windowed[split]
        lengths = [sum(map(len, encoder.word_pieces(s.words))) + 2 for s in sentences] or [0]
        assert got["subword_length_percentiles"] == {
            f"p{p}": int(np.percentile(lengths, p)) for p in PERCENTILES
        }
    assert sum(s["windowed_sentences"] for s in stats["splits"].values()) == 2


def _loaded_stats(datamodule) -> dict:
    """stats as they were computed before they streamed: from the corpus loaded whole."""
    from collections import Counter

    from nerlit.data.corpus import load_corpus
    from nerlit.data.datamodule import apply_unknown_labels
    from nerlit.data.schemes import spans
    from nerlit.data.statistics import PERCENTILES, percentile

    corpus, report = load_corpus(**datamodule.corpus_options, read=datamodule.read_options)
    apply_unknown_labels(corpus, corpus.labels(), datamodule.unknown_labels)
    encoder = datamodule.make_encoder()
    n_special = datamodule.window_limit() - encoder.budget
    splits = {}
    for split, sentences in corpus.splits().items():
        lengths, entities, windowed = Counter(), Counter(), 0
        for sentence in sentences:
            pieces = [len(p) for p in encoder.word_pieces(sentence.words)]
            lengths[sum(pieces) + n_special] += 1
            windowed += len(encoder.spans(pieces)) > 1
            entities.update(kind for kind, _, _ in spans(sentence.tags))
        splits[split] = {
            "sentences": len(sentences),
            "words": sum(len(s.words) for s in sentences),
            "entities": dict(sorted(entities.items())),
            "subword_length_percentiles": {
                f"p{p}": int(percentile(lengths, p)) for p in PERCENTILES
            },
            "windowed_sentences": windowed,
            "repaired_tags": report.repaired_tags.get(split, 0),
            "empty_skipped": report.empty_skipped.get(split, 0),
        }
    return {"scheme": report.scheme, "window": datamodule.window_limit(), "splits": splits}


def test_streamed_stats_equal_the_loaded_corpus_stats(tmp_path: Path):
    """stats read the corpus sentence by sentence instead of loading it: the same stats.json for
    a carved corpus (val/test dealt out of train), for given files, and for unseen labels."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from nerlit.config import CONFIG_DIR
    from nerlit.data.statistics import corpus_stats
    from nerlit.models.pretrained import load_tokenizer, resolve_pretrained

    sentences = make_sentences(300, seed=1) + [(["word"] * 130, ["O"] * 130)]
    train = write_conll(tmp_path / "train.txt", sentences, iob1=True)
    odd = [(w, [t.replace("tim", "date") for t in ts]) for w, ts in make_sentences(40, seed=2)]
    test = write_conll(tmp_path / "test.txt", odd)
    cases = [
        [f"data.train_file={train}"],
        [f"data.train_file={train}", "data.split_fractions=[0.5,0.3,0.2]", "data.split_seed=7"],
        [f"data.train_file={train}", f"data.test_file={test}", "data.unknown_labels=o"],
    ]
    for case in cases:
        overrides = ["data=conll", "data.max_length=64", "model=tiny", *case]
        with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
            cfg = compose("stats.yaml", overrides=overrides)
        resolved = resolve_pretrained(cfg.model.name, cfg.model.pretrained, cfg.paths.models_dir)
        tokenizer = load_tokenizer(resolved.location)
        expected = _loaded_stats(instantiate(cfg.data, tokenizer=tokenizer))
        assert corpus_stats(instantiate(cfg.data, tokenizer=tokenizer)) == expected, case


def test_stats_never_hold_the_corpus(tmp_path: Path, monkeypatch):
    """stats loaded the whole corpus as Python objects (20 MB of CoNLL: 758 MB peak); its sentences
    now come one at a time from the readers' generators, never from a list of the file."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from nerlit.config import CONFIG_DIR
    from nerlit.data import readers
    from nerlit.data.statistics import corpus_stats
    from nerlit.models.pretrained import load_tokenizer, resolve_pretrained

    def whole(*args, **kwargs):
        raise AssertionError("the corpus was read whole")

    monkeypatch.setattr(readers, "read_conll_file", whole)
    train = write_conll(tmp_path / "train.txt", make_sentences(40))
    overrides = ["data=conll", f"data.train_file={train}", "model=tiny"]
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("stats.yaml", overrides=overrides)
    resolved = resolve_pretrained(cfg.model.name, cfg.model.pretrained, cfg.paths.models_dir)
    stats = corpus_stats(instantiate(cfg.data, tokenizer=load_tokenizer(resolved.location)))
    assert sum(s["sentences"] for s in stats["splits"].values()) == 40

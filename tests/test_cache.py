"""The corpus cache: a second setup reads nothing and gets the same state; any change misses."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from nerlit.data.cache import cache_root
from nerlit.data.datamodule import NerDataModule
from tests.conftest import SHARED, make_sentences, write_gmb_csv


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("NERLIT_CACHE_DIR", str(tmp_path / "cache"))
    return cache_root()


def _datamodule(csv: Path, tokenizer, **options) -> NerDataModule:
    module = NerDataModule(str(csv), format="gmb", scheme="iob2", tokenizer=tokenizer, **options)
    module.setup()
    return module


def _state(module: NerDataModule) -> tuple:
    return (
        module.corpus.splits(),
        module.corpus.name,
        module.corpus.sources,
        module.windows,
        module.labels,
        module.report,
        module.windowed,
        module.mapped_unknown,
    )


def test_a_second_setup_reads_the_cache_and_gets_the_same_state(
    cache: Path, tmp_path: Path, cased_tokenizer, caplog
):
    csv = write_gmb_csv(tmp_path / "gmb.csv", make_sentences(40))
    first = _datamodule(csv, cased_tokenizer)
    assert len(list(cache.iterdir())) == 1
    with caplog.at_level(logging.INFO):
        second = _datamodule(csv, cased_tokenizer)
    assert "read from the cache" in caplog.text
    assert _state(second) == _state(first)


@pytest.mark.parametrize(
    "change", ["file", "option", "tokenizer"], ids=["an edited file", "an option", "a tokenizer"]
)
def test_any_change_to_what_decides_the_windows_misses(
    cache: Path, tmp_path: Path, cased_tokenizer, change: str
):
    csv = write_gmb_csv(tmp_path / "gmb.csv", make_sentences(40))
    _datamodule(csv, cased_tokenizer)
    options, tokenizer = {}, cased_tokenizer
    if change == "file":
        write_gmb_csv(csv, make_sentences(40, seed=1))
    elif change == "option":
        options = {"stride": 16}
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(SHARED / "models" / "all-MiniLM-L6-v2")
    _datamodule(csv, tokenizer, **options)
    assert len(list(cache.iterdir())) == 2


def test_cache_false_writes_nothing_and_a_broken_entry_is_read_again(
    cache: Path, tmp_path: Path, cased_tokenizer, caplog
):
    csv = write_gmb_csv(tmp_path / "gmb.csv", make_sentences(40))
    _datamodule(csv, cased_tokenizer, cache=False)
    assert not cache.exists() or not list(cache.iterdir())
    first = _datamodule(csv, cased_tokenizer)
    (entry,) = cache.iterdir()
    (entry / "windows.npz").write_bytes(b"not an npz")
    with caplog.at_level(logging.WARNING):
        again = _datamodule(csv, cased_tokenizer)
    assert "unreadable" in caplog.text
    assert again.windows == first.windows


def test_the_same_bytes_in_another_folder_report_their_own_sources(
    cache: Path, tmp_path: Path, cased_tokenizer
):
    """A corpus copied elsewhere is that folder's corpus in split.json, not the first folder's."""
    sentences = make_sentences(40)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    first = _datamodule(write_gmb_csv(tmp_path / "a" / "gmb.csv", sentences), cased_tokenizer)
    moved = tmp_path / "b" / "other.csv"
    second = _datamodule(write_gmb_csv(moved, sentences), cased_tokenizer)
    assert second.corpus.sources["train"] == str(moved.resolve())
    assert second.corpus.name == "other"
    assert second.windows == first.windows

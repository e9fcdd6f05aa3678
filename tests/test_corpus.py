"""Corpus assembly: scheme handling, repairs counted, empty sentences, carved splits, labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerlit.data.corpus import load_corpus
from nerlit.data.datamodule import NerDataModule
from tests.conftest import make_sentences, write_conll


def test_iob1_is_detected_and_converted(tmp_path: Path):
    files = [
        write_conll(tmp_path / f"{n}.txt", make_sentences(6, i), iob1=True)
        for i, n in enumerate(["train", "val", "test"])
    ]
    corpus, report = load_corpus(*files)
    assert report.scheme == "iob1"
    assert [list(s.tags) for s in corpus.test] == [t for _, t in make_sentences(6, 2)]
    assert report.repaired_tags == {"train": 0, "val": 0, "test": 0}


def test_bioes_input_and_repairs_are_counted(tmp_path: Path):
    path = tmp_path / "bioes.txt"
    path.write_text("Angela B-per\nMerkel E-per\nin O\nParis S-geo\n\nx O\nNATO I-org\n")
    corpus, report = load_corpus(path, path, path)
    assert report.scheme == "bioes"
    assert corpus.train[0].tags == ("B-per", "I-per", "O", "B-geo")
    assert corpus.train[1].tags == ("O", "B-org")
    assert report.repaired_tags["train"] == 1


def test_invalid_iob2_is_repaired_and_counted(tmp_path: Path, caplog):
    path = tmp_path / "t.txt"
    path.write_text("a B-per\nb O\nc I-per\nd I-geo\n")
    with caplog.at_level("WARNING"):
        corpus, report = load_corpus(path, path, path, scheme="iob2")
    assert corpus.train[0].tags == ("B-per", "O", "B-per", "B-geo")
    assert report.repaired_tags["train"] == 2
    assert "repaired 2 invalid iob2 tags" in caplog.text


def test_empty_sentences_are_skipped_and_counted(tmp_path: Path):
    path = tmp_path / "d.jsonl"
    lines = [{"tokens": [], "tags": []}, {"text": "   ", "entities": []}]
    lines += [{"tokens": ["a", "b"], "tags": ["B-x", "O"]}] * 3
    path.write_text("\n".join(json.dumps(x) for x in lines))
    corpus, report = load_corpus(path, path, path, format="jsonl")
    assert len(corpus.train) == 3
    assert report.empty_skipped["train"] == 2


def test_missing_splits_are_carved_from_train(tmp_path: Path):
    train = write_conll(tmp_path / "train.txt", make_sentences(100))
    test = write_conll(tmp_path / "test.txt", make_sentences(7, 1))
    corpus, report = load_corpus(train, None, test, split_seed=3)
    assert report.carved_from_train == ["val"]
    assert len(corpus.test) == 7
    assert (len(corpus.train), len(corpus.val)) == (89, 11)  # 0.1 / 0.9 of train for val
    both, _ = load_corpus(train, split_seed=3)
    assert (len(both.train), len(both.val), len(both.test)) == (80, 10, 10)
    again, _ = load_corpus(train, split_seed=3)
    assert [s.id for s in again.val] == [s.id for s in both.val]


def _datamodule(tmp_path, cased_tokenizer, test_tags, **kwargs) -> NerDataModule:
    train = write_conll(tmp_path / "train.txt", make_sentences(10))
    test = tmp_path / "test.txt"
    test.write_text("".join(f"w{i} {t}\n" for i, t in enumerate(test_tags)))
    return NerDataModule(
        str(train),
        str(train),
        str(test),
        tokenizer=cased_tokenizer,
        output_dir=str(tmp_path / "run"),
        **kwargs,
    )


def test_token_budget_below_the_window_stops_before_reading(tmp_path: Path, cased_tokenizer):
    dm = _datamodule(tmp_path, cased_tokenizer, ["O"], max_length=32, max_tokens=31)
    with pytest.raises(ValueError, match=r"data.max_tokens=31 is below the 32-subword window"):
        dm.setup()
    dm = _datamodule(tmp_path, cased_tokenizer, ["O"], max_length=32, max_tokens=32, batch_size=8)
    dm.setup()
    batches = list(dm.train_dataloader())
    assert all(b["input_ids"].numel() <= 32 for b in batches)
    assert sum(len(b["input_ids"]) for b in batches) == len(dm.windows["train"])
    dm = _datamodule(
        tmp_path, cased_tokenizer, ["O"], max_length=32, max_tokens=64, length_grouping=False
    )
    with pytest.raises(ValueError, match=r"data.max_tokens=64 with data.length_grouping=false"):
        dm.setup()


def test_unseen_label_is_an_error_listing_labels(tmp_path: Path, cased_tokenizer):
    dm = _datamodule(tmp_path, cased_tokenizer, ["B-per", "B-misc", "O"])
    with pytest.raises(ValueError, match=r"label 'B-misc' .* never occurs in train.*'B-per'"):
        dm.setup()


def test_unseen_label_mapped_to_o_when_asked(tmp_path: Path, cased_tokenizer):
    dm = _datamodule(tmp_path, cased_tokenizer, ["B-per", "B-misc", "I-misc"], unknown_labels="o")
    dm.setup()
    assert dm.sentences("test")[0].tags == ("B-per", "O", "O")
    report = json.loads((tmp_path / "run" / "split.json").read_text())["report"]
    assert report["unknown_labels_mapped_to_o"]["test"] == 2


def test_bioes_training_labels(tmp_path: Path, cased_tokenizer):
    dm = _datamodule(tmp_path, cased_tokenizer, ["B-per", "I-per"], train_scheme="bioes")
    dm.setup()
    assert {"B-per", "I-per", "E-per", "S-per"} <= set(dm.labels)
    assert dm.sentences("test")[0].tags == ("B-per", "I-per"), "gold for scoring stays IOB2"
    window = dm.windows["test"][0]
    owned = [window.labels[i] for i, w in enumerate(window.word_index) if w >= 0]
    assert [dm.labels[i] for i in owned] == ["B-per", "E-per"]


def test_reading_options_are_one_object_given_whole_or_as_keywords(tmp_path: Path):
    """ReadOptions lists the reading options once; keywords replace the object's values, and
    a run's flat record reads back as the same options."""
    from nerlit.data.corpus import ReadOptions, load_file
    from nerlit.errors import DataError
    from tests.conftest import write_gmb_csv

    gmb = write_gmb_csv(tmp_path / "corpus.csv", make_sentences(20))
    read = ReadOptions(format="gmb", encoding="cp1252", scheme="iob2")
    whole, _ = load_corpus(gmb, read=read)
    keywords, _ = load_corpus(gmb, format="gmb", encoding="cp1252", scheme="iob2")
    inferred, _ = load_corpus(gmb)  # a .csv name is read as GMB
    replaced, _ = load_corpus(gmb, read=ReadOptions(format="conll"), format="gmb")
    assert whole == keywords == inferred == replaced and len(whole.train) == 16
    assert load_file(gmb)[0] == load_file(gmb, read=read)[0]
    record = {**read.as_record(), "train_file": str(gmb), "batch_size": 8, "encoding": None}
    assert ReadOptions.from_config(record) == ReadOptions(format="gmb", scheme="iob2")
    for bad in ({"format": "xml"}, {"scheme": "bio"}):
        with pytest.raises(DataError, match=f"^data.{next(iter(bad))}=.*: expected one of"):
            ReadOptions(**bad)
    with pytest.raises(TypeError):
        load_corpus(gmb, fromat="gmb")


def test_a_runs_recorded_data_settings_hold_its_reading_options(tmp_path: Path):
    from nerlit.data.corpus import ReadOptions

    train = write_conll(tmp_path / "train.txt", make_sentences(30))
    data = NerDataModule(str(train), scheme="iob2", cache=False, tokenizer=None)
    data.corpus, data.report = load_corpus(**data.corpus_options, read=data.read_options)
    config = data.data_record()["config"]
    read = ReadOptions(format="conll", scheme="iob2")
    assert ReadOptions.from_config(config) == data.read_options == read
    assert {"format", "encoding", "token_column", "tag_column", "scheme"} <= set(config)

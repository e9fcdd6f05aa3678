"""data=hf: a saved Hugging Face dataset is read like a file: same checks, schemes, carving,
DataModule and stats; every error one line naming the folder, the split, the row and the fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nerlit.data.corpus import load_corpus
from nerlit.data.readers import read_sentences
from nerlit.errors import CorpusFormatError, DataError, MissingExtraError
from tests.conftest import REPO_ROOT, compose_train, make_sentences, write_conll

datasets = pytest.importorskip("datasets")

HF = {"format": "datasets", "token_column": "tokens", "tag_column": "ner_tags"}


def _labels(sentences) -> list[str]:
    return ["O"] + sorted({t for _, tags in sentences for t in tags} - {"O"})


def save_dataset(folder: Path, splits: dict, class_label: bool = True) -> Path:
    """``splits``: split name -> [(words, tags)]; tags as a ClassLabel list or as strings."""
    every = [s for rows in splits.values() for s in rows]
    names = _labels(every)
    tag = datasets.ClassLabel(names=names) if class_label else datasets.Value("string")
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(tag),
        }
    )
    built = {}
    for split, rows in splits.items():
        columns = {
            "id": [str(i) for i in range(len(rows))],
            "tokens": [list(w) for w, _ in rows],
            "ner_tags": [
                [names.index(t) for t in tags] if class_label else list(tags) for _, tags in rows
            ],
        }
        built[split] = datasets.Dataset.from_dict(columns, features=features)
    datasets.DatasetDict(built).save_to_disk(str(folder))
    return folder


def _three(n: int = 12) -> dict:
    return {
        "train": make_sentences(n, 0),
        "validation": make_sentences(n // 2, 1),
        "test": make_sentences(n // 2, 2),
    }


def test_data_hf_reads_a_saved_datasetdict_through_the_datamodule(tmp_path: Path, cased_tokenizer):
    from hydra.utils import instantiate

    from nerlit.config_checks import problems_of

    splits = _three()
    folder = save_dataset(tmp_path / "saved", splits)
    cfg = compose_train(["data=hf", f"data.train_file={folder}", "model=tiny", "data.cache=false"])
    assert problems_of(cfg, "train") == []
    datamodule = instantiate(cfg.data, tokenizer=cased_tokenizer)
    datamodule.setup()
    corpus = datamodule.corpus
    for ours, theirs in (("train", "train"), ("val", "validation"), ("test", "test")):
        assert [(list(s.words), list(s.tags)) for s in getattr(corpus, ours)] == splits[theirs]
    assert corpus.val[3].id == "validation:3"
    assert corpus.name == "saved"
    assert datamodule.report.carved_from_train == []
    assert datamodule.labels == ["O"] + [
        f"{p}-{t}" for t in ("geo", "org", "per", "tim") for p in "BI"
    ]
    assert len(datamodule.windows["test"]) == 6
    batch = next(iter(datamodule.val_dataloader()))
    assert batch["input_ids"].shape[0] == 6
    # what a checkpoint records reads the same split back (nerlit evaluate ckpt_path=...)
    from nerlit.data.held_out import resolve_split

    record = datamodule.data_record()
    assert record["config"]["train_file"] == str(folder.resolve())
    scored = resolve_split(None, "val", record, "ckpt")
    assert scored.sentences == corpus.val


def test_string_tags_and_missing_splits_are_carved_like_files(tmp_path: Path):
    sentences = make_sentences(50)
    folder = save_dataset(tmp_path / "saved", {"train": sentences}, class_label=False)
    corpus, report = load_corpus(folder, split_fractions=(0.8, 0.1, 0.1), split_seed=3, **HF)
    conll = write_conll(tmp_path / "train.txt", sentences)
    from_file, _ = load_corpus(conll, split_fractions=(0.8, 0.1, 0.1), split_seed=3)
    assert report.carved_from_train == ["val", "test"]
    assert [len(s) for s in corpus.splits().values()] == [40, 5, 5]
    for split in ("train", "val", "test"):
        ours = [s.words for s in getattr(corpus, split)]
        assert ours == [s.words for s in getattr(from_file, split)]


def test_one_saved_dataset_is_train(tmp_path: Path):
    sentences = make_sentences(20)
    folder = tmp_path / "one"
    datasets.Dataset.from_dict(
        {"tokens": [w for w, _ in sentences], "ner_tags": [t for _, t in sentences]}
    ).save_to_disk(str(folder))
    corpus, report = load_corpus(folder, **HF)
    assert report.carved_from_train == ["val", "test"]
    assert sum(len(s) for s in corpus.splits().values()) == 20
    assert corpus.train[0].id.startswith("one:")


def test_an_iob1_dataset_is_detected_and_converted_like_a_file(tmp_path: Path):
    sentences = make_sentences(10)
    conll = write_conll(tmp_path / "iob1.txt", sentences, iob1=True)
    iob1 = [(list(s.words), list(s.tags)) for s in read_sentences(conll, "conll")]  # as written
    assert any(
        t.startswith("I-") and (i == 0 or tags[i - 1] == "O")
        for _, tags in iob1
        for i, t in enumerate(tags)
    )
    folder = save_dataset(tmp_path / "saved", {"train": iob1, "validation": iob1, "test": iob1})
    corpus, report = load_corpus(folder, **HF)
    assert report.scheme == "iob1"
    assert report.schemes == {"train": "iob1", "val": "iob1", "test": "iob1"}
    assert [list(s.tags) for s in corpus.test] == [t for _, t in sentences]


@pytest.mark.parametrize(
    ("words", "tags", "problem"),
    [
        (["EU", "rejects"], ["B-org"], "2 tokens in 'tokens' but 1 tags in 'ner_tags'"),
        (["EU", ""], ["B-org", "O"], "token 2 is '': tokens must be strings"),
        (["EU", "  "], ["B-org", "O"], "token 2 is '  '"),
        (["EU", "re\njects"], ["B-org", "O"], "a line break"),
        (["EU", "rejects"], ["B-org", "X-org"], "unknown tag 'X-org'"),
    ],
)
def test_a_bad_row_is_one_line_naming_split_and_row(tmp_path: Path, words, tags, problem):
    rows = make_sentences(6)
    rows[4] = (words, tags)
    folder = save_dataset(
        tmp_path / "saved", {"train": make_sentences(6), "validation": rows}, class_label=False
    )
    with pytest.raises(CorpusFormatError) as caught:
        load_corpus(folder, **HF)
    message = str(caught.value)
    assert message.startswith(f"{folder}, split 'validation', row 4: "), message
    assert problem in message
    assert "Expected" in message and "\n" not in message


def test_a_class_number_outside_the_classlabel_names_the_row(tmp_path: Path):
    names = ["O", "B-per", "I-per"]
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    rows = {"tokens": [["Maria", "left"]] * 3, "ner_tags": [[1, 0], [1, 0], [1, -1]]}
    folder = tmp_path / "saved"
    datasets.DatasetDict(train=datasets.Dataset.from_dict(rows, features=features)).save_to_disk(
        str(folder)
    )
    with pytest.raises(
        CorpusFormatError, match=r"split 'train', row 2: tag 2 is -1, no class of 'ner_tags'"
    ):
        load_corpus(folder, **HF)


def test_a_missing_column_names_the_columns_there_are(tmp_path: Path):
    folder = save_dataset(tmp_path / "saved", _three())
    with pytest.raises(CorpusFormatError) as caught:
        load_corpus(folder, **{**HF, "tag_column": "labels"})
    message = str(caught.value)
    assert "no column 'labels' (data.tag_column); its columns are id, tokens, ner_tags" in message
    assert "split 'train'" in message and "\n" not in message


def test_column_numbers_and_unnamed_integer_tags_are_refused(tmp_path: Path):
    folder = save_dataset(tmp_path / "saved", _three())
    with pytest.raises(CorpusFormatError, match=r"data.token_column=0 is a column number"):
        load_corpus(folder, format="datasets")
    plain = tmp_path / "ints"
    datasets.Dataset.from_dict({"tokens": [["a"]], "ner_tags": [[0]]}).save_to_disk(str(plain))
    with pytest.raises(CorpusFormatError, match=r"cast_column\('ner_tags'"):
        load_corpus(plain, **HF)
    conll = write_conll(tmp_path / "t.txt", make_sentences(3))
    with pytest.raises(DataError, match="a column's name is for data.format=datasets"):
        load_corpus(conll, token_column="tokens")


def test_a_split_left_unread_is_an_error_and_can_be_named(tmp_path: Path):
    folder = save_dataset(
        tmp_path / "saved", {"train": make_sentences(10), "dev": make_sentences(4, 1)}
    )
    with pytest.raises(CorpusFormatError, match=r"data.val_split=dev to read val from it"):
        load_corpus(folder, **HF)
    corpus, report = load_corpus(folder, val_split="dev", **HF)
    assert report.carved_from_train == ["test"]
    assert [s.id for s in corpus.val] == [f"dev:{i}" for i in range(4)]
    with pytest.raises(CorpusFormatError, match=r"data.test_split=dev to read test from it"):
        load_corpus(folder, val_split=None, **HF)  # dev is still read by no split
    corpus, report = load_corpus(folder, val_split=None, test_split=None, **HF)
    assert report.carved_from_train == ["val", "test"]


def test_not_a_saved_dataset_and_no_datasets_are_one_line(tmp_path: Path, monkeypatch):
    with pytest.raises(CorpusFormatError, match="not a saved Hugging Face dataset"):
        load_corpus(tmp_path, **HF)
    folder = save_dataset(tmp_path / "saved", _three())
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r'pip install "nerlit\[hf\]"'):
        load_corpus(folder, **HF)


def test_the_cache_key_follows_the_saved_folder(tmp_path: Path, cased_tokenizer):
    from nerlit.data.cache import cache_key

    def key(folder: Path) -> str | None:
        return cache_key(
            {"train_file": str(folder), "val_file": None, "test_file": None, **HF}, cased_tokenizer
        )

    splits = _three()
    first = key(save_dataset(tmp_path / "a", splits))
    assert first is not None
    assert key(save_dataset(tmp_path / "a", splits)) == first  # saved again, same rows
    splits["test"][0] = (["Paris"], ["B-geo"])
    assert key(save_dataset(tmp_path / "a", splits)) != first


def test_nerlit_stats_on_a_saved_dataset(tmp_path: Path):
    splits = _three(20)
    splits["train"].append((["word"] * 300, ["O"] * 300))  # longer than a 64-subword window
    folder = save_dataset(tmp_path / "saved", splits)
    run = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nerlit.stats",
            "data=hf",
            f"data.train_file={folder}",
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
    stats = json.loads((run / "stats.json").read_text())
    assert stats["scheme"] == "iob2"
    got = {split: s["sentences"] for split, s in stats["splits"].items()}
    assert got == {"train": 21, "val": 10, "test": 10}
    assert stats["splits"]["train"]["windowed_sentences"] == 1
    assert stats["splits"]["val"]["entities"] == {"geo": 10, "org": 10, "per": 10, "tim": 10}

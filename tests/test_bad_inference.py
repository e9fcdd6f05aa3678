"""What inference does with bad input: one line naming what is wrong, never a stack
trace, a half-written file or a silently different model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nerlit import Tagger
from nerlit.commands.train import train
from nerlit.errors import DataError, ModelLoadError, OutputPathError
from nerlit.inference.files import predict_file
from nerlit.inference.hf_export import export_huggingface
from tests.conftest import REPO_ROOT, compose_train, make_sentences, tiny_checkpoint, write_gmb_csv


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def tagger(ckpt: Path) -> Tagger:
    return Tagger.load(ckpt, precision="fp32")


def _edited(ckpt: Path, path: Path, edit) -> Path:
    checkpoint = torch.load(ckpt, weights_only=True)
    edit(checkpoint["hyper_parameters"])
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="module")
def five_labels(ckpt: Path, tmp_path_factory) -> Path:
    """Weights of 9 labels under hyperparameters that name 5."""
    path = tmp_path_factory.mktemp("bad") / "five.ckpt"
    return _edited(ckpt, path, lambda h: h.update(labels=h["labels"][:5]))


def _one_line(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message, message
    return message


def _cli(verb: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"nerlit.{verb}", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        input="Obama visited Paris\n",
        timeout=300,
    )


def _last_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    return result.stderr.strip().splitlines()[-1]


# -- 1. a model that is not one, or not the one the settings describe --


def test_weights_of_another_label_set_name_both_counts(five_labels: Path):
    with pytest.raises(ModelLoadError) as caught:
        Tagger.load(five_labels)
    message = _one_line(caught.value)
    assert "five.ckpt" in message and "9 labels" in message and "5" in message


def test_weights_of_another_hidden_size_name_both_sizes(ckpt: Path, tmp_path: Path):
    def wider(hparams: dict) -> None:
        hparams["encoder_config"]["hidden_size"] = 64

    with pytest.raises(ModelLoadError) as caught:
        Tagger.load(_edited(ckpt, tmp_path / "wide.ckpt", wider))
    message = _one_line(caught.value)
    assert "hidden size" in message and "32" in message and "64" in message


@pytest.mark.parametrize("verb", ["predict", "evaluate", "export"])
def test_every_verb_says_what_differs_in_one_line(five_labels: Path, tmp_path: Path, verb: str):
    extra = {
        "predict": ["input=-", "output=-"],
        "evaluate": [f"data.test_file={tmp_path / 'test.conll'}"],
        "export": [f"output_dir={tmp_path / 'out'}"],
    }[verb]
    result = _cli(verb, f"ckpt_path={five_labels}", *extra, f"hydra.run.dir={tmp_path}/run")
    last = _last_line(result)
    assert last.startswith("nerlit: ") and "9 labels" in last, last


@pytest.mark.parametrize(
    "files",
    [
        {"config.json": '{"model_type": "bert"}'},  # no weights
        {"config.json": "{"},  # not JSON
    ],
)
def test_a_broken_model_folder_is_a_load_error(tmp_path: Path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ModelLoadError) as caught:
        Tagger.load(tmp_path)
    assert str(tmp_path) in _one_line(caught.value)


def _resume(ckpt: Path, tmp_path: Path, *overrides: str, sentences=None) -> None:
    csv = write_gmb_csv(tmp_path / "gmb.csv", sentences or make_sentences(60))
    train(
        compose_train(
            [
                "model=tiny",
                "debug=fast",
                f"data.train_file={csv}",
                "data.batch_size=8",
                "trainer.accelerator=cpu",
                "logger=none",
                "test=false",
                f"ckpt_path={ckpt.parent / 'last.ckpt'}",  # the one resuming reads
                *overrides,
            ],
            tmp_path / "run",
        )
    )


def test_resuming_with_another_label_set_names_the_labels(ckpt: Path, tmp_path: Path):
    people_only = [
        (words, [t if t.endswith("per") else "O" for t in tags])
        for words, tags in make_sentences(60)
    ]
    with pytest.raises(ModelLoadError) as caught:
        _resume(ckpt, tmp_path, sentences=people_only)
    message = _one_line(caught.value)
    assert "9 labels" in message and "3" in message and "B-geo" in message


def test_resuming_with_another_architecture_names_the_difference(ckpt: Path, tmp_path: Path):
    with pytest.raises(ModelLoadError) as caught:
        _resume(ckpt, tmp_path, "model.config_overrides.hidden_size=16", "model.head=crf")
    message = _one_line(caught.value)
    assert "hidden_size 32" in message and "16" in message and "head" in message


# -- 2. export replaces a folder, never merges into one --


def test_export_refuses_a_non_empty_folder_and_overwrite_replaces_it(ckpt: Path, tmp_path: Path):
    out = tmp_path / "model"
    out.mkdir()
    stale = out / "special_tokens_map.json"
    stale.write_text('{"cls_token": "[SEP]", "sep_token": "[CLS]"}')
    with pytest.raises(OutputPathError) as caught:
        export_huggingface(ckpt, out)
    assert "overwrite=true" in _one_line(caught.value) and str(out) in str(caught.value)
    assert stale.is_file() and not (out / "config.json").exists()

    export_huggingface(ckpt, out, overwrite=True)
    assert not stale.exists() and (out / "config.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name != "model"], "no temporary folder left"
    words = [["Angela", "Merkel", "visited", "Paris"]]
    expected = Tagger.load(ckpt, precision="fp32").word_logits(words)[0]
    assert torch.allclose(Tagger.load(out, precision="fp32").word_logits(words)[0], expected)


# -- 3. predict writes its output whole or not at all, and names the exact line --


def test_a_decoding_error_leaves_the_existing_output_alone(tagger: Tagger, tmp_path: Path):
    source = tmp_path / "in.txt"
    lines = [f"Obama visited Paris on day {i} of the long visit ." for i in range(600)]
    data = "\n".join(lines).encode() + b"\n"
    bad_line = 400
    offset = sum(len(line) + 1 for line in lines[: bad_line - 1])
    source.write_bytes(data[:offset] + b"Z\xfcrich " + data[offset:])
    output = tmp_path / "out.jsonl"
    output.write_text("yesterday's results\n")
    with pytest.raises(DataError) as caught:
        predict_file(tagger, source, output, chunk_size=64)
    assert f"in.txt, line {bad_line}:" in _one_line(caught.value)
    assert output.read_text() == "yesterday's results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"], "no temp file"


# -- 4. unwritable outputs: one line naming the path --


def test_unwritable_outputs_name_the_path(ckpt: Path, tagger: Tagger, tmp_path: Path):
    (tmp_path / "in.txt").write_text("Obama visited Paris\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for output in (a_file / "out.jsonl", tmp_path):
        with pytest.raises(OutputPathError) as caught:
            predict_file(tagger, tmp_path / "in.txt", output)
        assert str(output) in _one_line(caught.value)
    with pytest.raises(OutputPathError) as caught:
        export_huggingface(ckpt, a_file / "model")
    assert str(a_file / "model") in _one_line(caught.value)


def test_cli_unwritable_output_is_one_line(ckpt: Path, tmp_path: Path):
    (tmp_path / "a_file").write_text("")
    out = tmp_path / "a_file" / "out.jsonl"
    result = _cli(
        "predict", f"ckpt_path={ckpt}", "input=-", f"output={out}", f"hydra.run.dir={tmp_path}"
    )
    assert str(out) in _last_line(result)


# -- 5. the Python API: the bad item's index, not an internal error --


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (None, TypeError),
        (5, TypeError),
        (b"Obama", TypeError),
        ("Obama \ud800 visited", ValueError),
        (["Obama", None], TypeError),
        (["Obama", "\udfff"], ValueError),
    ],
)
def test_bad_texts_name_their_index(tagger: Tagger, bad, error):
    with pytest.raises(error, match=r"texts\[1\]"):
        tagger.predict(["Angela Merkel visited Paris", bad])


def test_predict_tags_takes_word_lists_only(tagger: Tagger):
    with pytest.raises(TypeError, match=r"sentences\[1\].*predict"):
        tagger.predict_tags([["Obama"], "Obama visited Paris"])
    with pytest.raises(TypeError, match=r"sentences\[0\]\[1\]"):
        tagger.predict_tags([["Obama", 3]])


@pytest.mark.parametrize(
    ("option", "value"),
    [("batch_size", 0), ("batch_size", -2), ("stride", -1), ("max_length", -5)],
)
def test_bad_window_options_fail_at_load(ckpt: Path, option: str, value: int):
    with pytest.raises(ValueError, match=f"{option}={value}"):
        Tagger.load(ckpt, **{option: value})


def test_max_length_too_small_for_a_word_names_the_least_that_works(ckpt: Path):
    """Two special tokens leave no room at max_length=3; at 4 a word of many subwords is cut
    to its first ones (it is labelled at its first subword) and still gets its tag."""
    least = r"^max_length=3: expected an integer >= 4 \(a window's 2 special tokens"
    with pytest.raises(ValueError, match=least):
        Tagger.load(ckpt, max_length=3)
    small = Tagger.load(ckpt, max_length=4, stride=1)
    words = ["Supercalifragilisticexpialidocious" * 3, "visited", "Paris"]
    assert len(small.predict_tags([words])[0]) == 3


def test_blank_pre_split_words_are_never_entities(ckpt: Path):
    """A model that tags every word B-per: blank words get O, and no entity is blank."""
    tagger = Tagger.load(ckpt, precision="fp32", decode="argmax")
    with torch.no_grad():
        tagger.network.model.classifier.bias[tagger.labels.index("B-per")] += 100
    words = ["Obama", "", " ", "visited", "\t", "Paris"]
    (tags,) = tagger.predict_tags([words])
    assert tags == ["B-per", "O", "O", "B-per", "O", "B-per"]
    (entities,) = tagger.predict([words])
    assert [(e.text, e.word_start, e.word_end) for e in entities] == [
        ("Obama", 0, 1),
        ("visited", 3, 4),
        ("Paris", 5, 6),
    ]
    assert tagger.predict([["", " "]]) == [[]]
    assert tagger.predict_tags([["", " "]]) == [["O", "O"]]


def test_an_exported_folder_without_its_tokenizer_is_refused(ckpt: Path, tmp_path: Path):
    """transformers builds a tokenizer of special tokens alone from a bare config: every word
    would be [UNK] and most entities silently lost."""
    folder = export_huggingface(ckpt, tmp_path / "export")
    assert Tagger.load(folder).predict("Obama visited Paris")  # whole, it loads and tags
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    with pytest.raises(ModelLoadError) as error:
        Tagger.load(folder)
    assert _one_line(error.value).startswith(f"no tokenizer in {folder}")

"""python -m nerlit.predict: JSONL, CoNLL and HTML out; stdin/stdout; odd lines; clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from nerlit import Tagger
from nerlit.commands.predict import predict
from nerlit.config import CONFIG_DIR
from nerlit.data.colours import type_colour
from nerlit.data.types import Entity
from nerlit.errors import DataError
from nerlit.inference.files import predict_file
from nerlit.inference.html import render_html
from tests.conftest import REPO_ROOT, tiny_checkpoint

LINES = [
    "Angela Merkel visited Berlin with NATO on Monday.",
    "",
    "Iraq's U.S.-led forces met Obama in São Paulo 😀 on Friday.",
    "   ",
    " ".join(["Obama visited Zürich and 東京 with Reuters."] * 200),
    "naïve café\u2028still one line",
]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def tagger(ckpt: Path) -> Tagger:
    return Tagger.load(ckpt)


def _write_lines(path: Path) -> Path:
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return path


def test_jsonl_one_record_per_line_with_offsets(tagger: Tagger, tmp_path: Path):
    source = _write_lines(tmp_path / "in.txt")
    summary = predict_file(tagger, source, tmp_path / "out.jsonl", chunk_size=2, progress=True)
    records = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    assert [r["text"] for r in records] == LINES
    assert summary.texts == len(LINES)
    assert records[1]["entities"] == [] and records[3]["entities"] == []
    for record in records:
        for entity in record["entities"]:
            assert set(entity) == {"text", "label", "start", "end", "score"}
            assert record["text"][entity["start"] : entity["end"]] == entity["text"]
    expected = tagger.predict(LINES)
    assert [len(r["entities"]) for r in records] == [len(e) for e in expected]


def test_conll_appends_a_tag_column_and_keeps_the_layout(tagger: Tagger, tmp_path: Path):
    source = tmp_path / "in.conll"
    source.write_text(
        "-DOCSTART- -X- O O\n\nJohn NNP B-per\nSmith NNP I-per\nleft VBD O\n\n"
        "Paris\tNNP\tB-geo\n.\t.\tO\n"
    )
    predict_file(tagger, source, tmp_path / "out.conll", format="conll")
    lines = (tmp_path / "out.conll").read_text().splitlines()
    assert lines[:2] == ["-DOCSTART- -X- O O", ""]
    assert [line.rsplit(maxsplit=1)[0] for line in lines[2:5]] == [
        "John NNP B-per",
        "Smith NNP I-per",
        "left VBD O",
    ]
    assert lines[5] == "" and lines[6].startswith("Paris\tNNP\tB-geo\t")
    predicted = [line.split()[-1] for line in lines if line and not line.startswith("-DOC")]
    assert (
        predicted
        == tagger.predict_tags([["John", "Smith", "left"], ["Paris", "."]])[0]
        + (tagger.predict_tags([["Paris", "."]])[0])
    )


class _RecordingTagger:
    """Stands in for Tagger: records the sentences it is given, tags each first word B-loc."""

    def __init__(self) -> None:
        self.sentences: list[list[str]] = []

    def predict_tags(self, sentences, documents=None) -> list[list[str]]:
        self.sentences += [list(s) for s in sentences]
        return [["B-loc"] + ["O"] * (len(s) - 1) for s in sentences]


@pytest.mark.parametrize(
    ("text", "token_column", "words"),
    [
        ("New York\tB-LOC\nis\tO\n\nfine\tO\n", 0, [["New York", "is"], ["fine"]]),
        ("1\tNew York\tB-LOC\n2\tis\tO\n", 1, [["New York", "is"]]),
        ("1 Paris NNP\n2 is VBZ\n", 1, [["Paris", "is"]]),
        ("-DOCSTART-\n\nParis\nis\n", 0, [["Paris", "is"]]),  # words alone, no tag column
    ],
)
def test_conll_words_are_read_as_training_reads_them(tmp_path: Path, text, token_column, words):
    source = tmp_path / "in.conll"
    source.write_text(text)
    tagger = _RecordingTagger()
    predict_file(tagger, source, tmp_path / "out.conll", format="conll", token_column=token_column)
    assert tagger.sentences == words
    out = (tmp_path / "out.conll").read_text().splitlines()
    lines = text.splitlines()
    assert [line.rsplit(maxsplit=1)[0] if line else line for line in out] == lines
    assert sum(line.endswith("B-loc") for line in out) == len(words)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Paris\n\n#\n\n#tag\n", [["Paris"], ["#"], ["#tag"]]),
        ("#happy\n\n#sad\n", [["#happy"], ["#sad"]]),  # no other word line at all
        ("#tag\n\nParis\n", [["#tag"], ["Paris"]]),  # the word line comes later
        ("# sent_id = 1\n#\tNN\n\nParis\tNNP\n", [["#"], ["Paris"]]),
        ("Paris NNP B-LOC\n\n# O O\n\n# id 1\n", [["Paris"], ["#"]]),  # '# id 1': no tag
    ],
)
def test_conll_hash_words_stay_words(tmp_path: Path, text: str, words):
    """'#' and '#tag' alone in a sentence were read as comments and written back untagged."""
    source = tmp_path / "in.conll"
    source.write_text(text)
    tagger = _RecordingTagger()
    predict_file(tagger, source, tmp_path / "out.conll", format="conll", progress=False)
    assert tagger.sentences == words
    out = (tmp_path / "out.conll").read_text().splitlines()
    tagged = [line for line in out if line.endswith(("\tB-loc", " B-loc", "\tO", " O"))]
    assert len(tagged) == sum(map(len, words))
    kept = [line.rsplit(maxsplit=1)[0] if line in tagged else line for line in out]
    assert kept == text.splitlines()


def test_conll_empty_token_is_refused(tmp_path: Path):
    source = tmp_path / "in.conll"
    source.write_text("Paris\tNNP\n\tNN\n")
    with pytest.raises(DataError, match=r"in\.conll, line 2: the token \(column 0\) is empty"):
        predict_file(_RecordingTagger(), source, tmp_path / "out", format="conll")


def test_conll_without_the_token_column_names_the_line(tmp_path: Path):
    source = tmp_path / "in.conll"
    source.write_text("Paris\tB-LOC\n\nis\n")
    with pytest.raises(DataError, match=r"in\.conll, line 3: no column 1"):
        predict_file(_RecordingTagger(), source, tmp_path / "out", format="conll", token_column=1)


def test_cli_config_reads_conll_through_token_column(ckpt: Path, tmp_path: Path):
    source = tmp_path / "in.tsv"
    source.write_text("1\tNew York\tB-LOC\n2\tis\tO\n")
    overrides = [f"ckpt_path={ckpt}", f"input={source}", f"output={tmp_path}/out.tsv"]
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("predict.yaml", [*overrides, "format=conll", "token_column=1"])
    assert predict(cfg).words == 2
    lines = (tmp_path / "out.tsv").read_text().splitlines()
    assert [line.rsplit("\t", 1)[0] for line in lines] == ["1\tNew York\tB-LOC", "2\tis\tO"]


def test_the_output_name_picks_the_format_unless_one_is_given(ckpt: Path, tmp_path: Path):
    """``output=tags.html`` wrote JSONL into a file named .html, exit 0."""
    source = _write_lines(tmp_path / "in.txt")
    written = {}
    for name, given in (("a.html", None), ("b.HTM", None), ("c.jsonl", None), ("d.html", "jsonl")):
        overrides = [f"ckpt_path={ckpt}", f"input={source}", f"output={tmp_path / name}"]
        with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
            cfg = compose("predict.yaml", [*overrides, *([f"format={given}"] if given else [])])
        predict(cfg)
        written[name] = (tmp_path / name).read_text("utf-8")
    assert written["a.html"].startswith("<!DOCTYPE html>") and written["b.HTM"].startswith("<!")
    assert json.loads(written["c.jsonl"].splitlines()[0])["text"] == LINES[0]
    assert json.loads(written["d.html"].splitlines()[0])["text"] == LINES[0]  # as asked


def test_html_page_is_self_contained_with_a_legend(tagger: Tagger, tmp_path: Path):
    source = _write_lines(tmp_path / "in.txt")
    predict_file(tagger, source, tmp_path / "out.html", format="html")
    page = (tmp_path / "out.html").read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "http" not in page
    assert 'class="legend"' in page and page.count('<div class="doc">') == len(LINES)


def test_html_escapes_and_highlights():
    text = "<b>Obama</b> & Paris"
    entities = [Entity("Obama", "per", 3, 8, 0.9, 1, 2), Entity("Paris", "geo", 15, 20, 0.8, 5, 6)]
    page = render_html([(text, entities)])
    assert "&lt;b&gt;" in page and "<b>" not in page.split("<body>")[1]
    assert page.count('<mark class="ent"') == 2 + 2  # two in the text, two in the legend
    assert type_colour("per") != type_colour("geo")
    assert type_colour("weird-type") == type_colour("weird-type")


def _cli(
    *args: str, stdin: str | None = None, cwd: Path = REPO_ROOT
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nerlit.predict", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
    )


def test_cli_stdin_to_stdout_keeps_stdout_clean_and_writes_no_run_folder(
    ckpt: Path, tmp_path: Path
):
    """No ``output=``: stdout. predict writes only what it is asked to: no outputs/ folder
    holding a log, in a directory that the user may not even be able to write to."""
    project = tmp_path / "project"
    project.mkdir()
    project.chmod(0o555)
    try:
        result = _cli(f"ckpt_path={ckpt}", "input=-", stdin="\n".join(LINES[:3]), cwd=project)
        failed = _cli(f"ckpt_path={tmp_path}/nope.ckpt", "input=-", stdin="x", cwd=project)
    finally:
        project.chmod(0o755)
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == LINES[:3]
    assert "tagged 3 texts" in result.stderr
    assert failed.returncode != 0 and "nope.ckpt" in failed.stderr
    assert list(project.iterdir()) == []


def test_cli_missing_checkpoint_is_one_clear_line(tmp_path: Path):
    result = _cli(
        f"ckpt_path={tmp_path}/nope.ckpt", "input=-", "output=-", f"hydra.run.dir={tmp_path}"
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "nope.ckpt: no such checkpoint file or model folder" in result.stderr


def test_input_in_the_wrong_encoding_names_the_file_and_the_fix(tagger: Tagger, tmp_path: Path):
    source = tmp_path / "latin.txt"
    source.write_bytes("Obama visited Zürich\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.txt, line 1: .*not utf-8.*encoding=latin-1"):
        predict_file(tagger, source, tmp_path / "out.jsonl")
    predict_file(tagger, source, tmp_path / "out.jsonl", encoding="latin-1")
    assert json.loads((tmp_path / "out.jsonl").read_text())["text"] == "Obama visited Zürich"


def test_the_progress_total_counts_lines_as_they_are_read(tmp_path: Path):
    """The bar's total was the count of b"\n": 0 for old-Mac \r files, the compressed bytes'
    newlines for gzip, one short for a last line without a break."""
    import gzip

    from nerlit.inference.files import _count_lines

    cases = {
        "mac.txt": b"a\rb\rc",
        "dos.txt": b"a\r\nb\r\nc\r\n",
        "utf16.txt": "a\nb\nc".encode("utf-16"),
        "texts.txt.gz": gzip.compress(b"a\nb\nc\n"),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert _count_lines(tmp_path / name, None) == 3, name
    assert _count_lines("-", None) is None


def test_a_killed_predict_leaves_a_visible_partial_that_the_next_run_replaces(
    tagger: Tagger, tmp_path: Path, caplog
):
    """A killed predict left a hidden ``.out.jsonl.<hex>.tmp`` (206 MB seen) that nobody
    would find; now it is ``out.jsonl.partial``, and the next run of the same output removes
    it and says so."""
    source = _write_lines(tmp_path / "in.txt")
    out = tmp_path / "out.jsonl"
    code = (
        "import os, sys\n"
        "from nerlit.inference.outputs import atomic_text_file\n"
        "with atomic_text_file(sys.argv[1]) as handle:\n"
        "    handle.write('half a result\\n'); handle.flush()\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code, str(out)], timeout=60, cwd=REPO_ROOT)
    assert killed.returncode == -9
    assert [p.name for p in tmp_path.iterdir() if p.name != "in.txt"] == ["out.jsonl.partial"]
    with caplog.at_level("WARNING", logger="nerlit.inference.outputs"):
        predict_file(tagger, source, out, progress=False)
    assert "removed " + str(tmp_path / "out.jsonl.partial") in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]
    assert "half a result" not in out.read_text()


def test_a_second_run_writing_the_same_output_meanwhile_is_one_line(tmp_path: Path):
    from nerlit.errors import OutputPathError
    from nerlit.inference.outputs import atomic_text_file

    out = tmp_path / "out.jsonl"
    with atomic_text_file(out) as first:
        first.write("first\n")
        with (
            pytest.raises(OutputPathError, match=r"another run is writing it now"),
            atomic_text_file(out),
        ):
            pass
    assert out.read_text() == "first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


class _FullDisk:
    """A file whose writes fail as on a full disk (ENOSPC); no real disk is filled."""

    def __init__(self, handle) -> None:
        self.handle = handle

    def write(self, text: str) -> int:
        import errno
        import os

        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()

    def __getattr__(self, name: str):
        return getattr(self.handle, name)


def test_a_full_disk_is_one_line_and_leaves_the_earlier_output(
    tagger: Tagger, tmp_path: Path, monkeypatch
):
    from nerlit.errors import OutputPathError
    from nerlit.inference import outputs

    source = _write_lines(tmp_path / "in.txt")
    out = tmp_path / "out.jsonl"
    out.write_text("the earlier output\n")
    full = lambda *a, **k: _FullDisk(open(*a, **k))  # noqa: E731, SIM115 - closed by _FullDisk
    monkeypatch.setattr(outputs, "open", full, raising=False)
    with pytest.raises(OutputPathError) as error:
        predict_file(tagger, source, out, progress=False)
    assert str(error.value) == (
        f"output={out}: could not be written (No space left on device); nothing was changed "
        f"(out.jsonl is as it was): free some space and run again"
    )
    assert out.read_text() == "the earlier output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]


def test_the_html_page_is_written_as_the_texts_come():
    """predict format=html held every text and its entities, then built the page as one string
    (2 GB on 20 MB of text): each text's block is now written before the next text is read."""
    import io

    from nerlit.inference.html import write_html

    sink = io.StringIO()
    entity = Entity("Obama", "per", 0, 5, 0.9, 0, 1)

    def texts():
        for i in range(3):
            if i:  # the previous text is on the page already
                assert sink.getvalue().count('<div class="doc">') == i
            yield f"Obama {i}", [entity]

    write_html(sink, texts(), title="t")
    page = sink.getvalue()
    assert page.count('<div class="doc">') == 3 and "3 texts, 3 entities" in page
    # counts and legend come last in the file, first on the page (CSS order, no script)
    assert page.index('class="legend"') > page.rindex('<div class="doc">')
    assert ".summary { order: -1; }" in page and "<script" not in page
    assert page == render_html([(f"Obama {i}", [entity]) for i in range(3)], title="t")


def test_tagging_new_words_leaves_no_per_word_state_behind(tagger: Tagger, tmp_path: Path):
    """predict grew with its input (2 -> 20 MB of text: 676 -> 857 MB peak RSS): the casing class
    of every distinct word went into a process-wide cache of up to a million words. The words of
    a chunk are now held by that chunk's encoder only, and gone when the chunk is written."""
    import gc
    import random
    import tracemalloc

    from nerlit.data.casing import word_casing

    rng = random.Random(0)

    def made_up() -> str:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(12)).capitalize()

    source = tmp_path / "in.txt"
    source.write_text("".join(" ".join(made_up() for _ in range(20)) + "\n" for _ in range(600)))
    predict_file(tagger, _write_lines(tmp_path / "warm.txt"), tmp_path / "warm.jsonl")
    cached = word_casing.cache_info().currsize
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        summary = predict_file(tagger, source, tmp_path / "out.jsonl", chunk_size=100)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert summary.texts == 600
    assert word_casing.cache_info().currsize == cached
    assert kept < 300_000, f"{kept} bytes kept after tagging 12,000 new words"

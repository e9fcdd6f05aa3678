"""Adversarial corpora: nothing lost, nothing silent.

Every corpus is either read exactly as written (every newline convention, BOMs, UTF-16/32, each
file's own tag scheme) or stopped with one line naming the file, the line, what is wrong and what
was expected. Each test failed on the code before its fix.
"""

from __future__ import annotations

import codecs
import gzip
import json
import re
from pathlib import Path

import pytest

from nerlit.data.corpus import load_corpus, load_file
from nerlit.data.readers import read_lines, read_sentences
from nerlit.data.schemes import spans
from nerlit.errors import CorpusFormatError, DataError
from nerlit.inference.files import predict_file
from tests.conftest import make_sentences, write_conll, write_gmb_csv

CONLL = (
    "-DOCSTART- -X- O O\n\nEU NNP B-ORG\nrejects VBZ O\n\nPeter NNP B-PER\nBlackburn NNP I-PER\n"
)
WORDS = [("EU", "rejects"), ("Peter", "Blackburn")]
TAGS = [("B-ORG", "O"), ("B-PER", "I-PER")]


def one_line(error: pytest.ExceptionInfo, path: Path, line: int | None) -> str:
    """The message, checked to be the promised one line: 'file, line N: problem. Expected x.'"""
    message = str(error.value)
    where = f"{path}, line {line}: " if line is not None else f"{path}: "
    assert message.startswith(where), message
    assert "\n" not in message and re.search(r"\. Expected .+\.$", message), message
    return message


def read(path: Path, format: str = "conll", **options) -> list[tuple[tuple, tuple]]:
    return [(s.words, s.tags) for s in read_sentences(path, format, **options)]


# --- 1. newlines ------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r", "mixed"])
def test_every_newline_convention_reads_the_same_sentences(tmp_path: Path, ending: str):
    lines = CONLL.split("\n")
    if ending == "mixed":
        text = "".join(line + ("\n", "\r\n", "\r")[i % 3] for i, line in enumerate(lines[:-1]))
    else:
        text = ending.join(lines)
    path = tmp_path / "c.txt"
    path.write_bytes(text.encode())
    read_back = read_sentences(path, "conll")
    assert [s.words for s in read_back] == WORDS and [s.tags for s in read_back] == TAGS
    assert [s.document for s in read_back] == ["c.txt:1", "c.txt:1"]


def test_unicode_line_separators_inside_a_line_are_not_line_breaks(tmp_path: Path):
    words = ["a\u2028b", "c\x85d", "10\xa0000", "e\x1cf", "g\u2029h"]
    path = tmp_path / "u.txt"
    path.write_text("".join(f"{w}\tO\r" for w in words), encoding="utf-8")
    assert read(path) == [(tuple(words), ("O",) * 5)]
    jsonl = tmp_path / "u.jsonl"
    jsonl.write_text(json.dumps({"tokens": words, "tags": ["O"] * 5}, ensure_ascii=False) + "\r")
    assert read(jsonl, "jsonl") == [(tuple(words), ("O",) * 5)]
    # GMB is cp1252: byte 0x85 is an ellipsis inside a word, never a line break
    gmb = write_gmb_csv(tmp_path / "g.csv", [(["Wait\u2026", "what"], ["O", "O"])])
    assert read(gmb, "gmb") == [(("Wait\u2026", "what"), ("O", "O"))]


def test_latin1_bytes_that_python_calls_whitespace_stay_in_the_word(tmp_path: Path):
    """0x85 and 0xa0 read as latin-1 are U+0085 and NBSP; str.split() would cut words at them."""
    path = tmp_path / "l.txt"
    path.write_bytes(b"Hello\x85 O\n\xa0 O\nWorld\xe9 O\n")
    assert read(path, encoding="latin-1") == [(("Hello\x85", "\xa0", "World\xe9"), ("O",) * 3)]


def test_the_fallback_for_non_utf8_is_cp1252_where_it_decodes(tmp_path: Path):
    """Windows files: 0x92 is an apostrophe in cp1252, a control character tokenizers drop in
    latin-1. Bytes cp1252 leaves undefined (0x81) still read, as latin-1."""
    path = tmp_path / "w.txt"
    path.write_bytes(b"O\x92Neil B-PER\nsaid\x85 O\n")
    assert read(path) == [(("O\u2019Neil", "said\u2026"), ("B-PER", "O"))]
    path.write_bytes(b"O\x92Neil\x81 B-PER\n")
    assert read(path) == [(("O\x92Neil\x81",), ("B-PER",))]


def test_predict_input_reads_every_newline_and_drops_the_bom(tmp_path: Path):
    source = tmp_path / "in.txt"
    source.write_bytes(codecs.BOM_UTF8 + "Angela Merkel\rvisited\u2028Paris\r\nok\n".encode())
    tagger = _FakeTagger()
    predict_file(tagger, source, tmp_path / "out.jsonl", progress=False)
    assert tagger.texts == ["Angela Merkel", "visited\u2028Paris", "ok"]
    conll = tmp_path / "in.conll"
    conll.write_bytes(codecs.BOM_UTF8 + b"-DOCSTART- O\r\rEU O\rrejects O\r")
    predict_file(tagger, conll, tmp_path / "out.conll", format="conll", progress=False)
    assert tagger.sentences == [["EU", "rejects"]]
    assert tagger.documents == ["in.conll:1"]
    out = (tmp_path / "out.conll").read_text().splitlines()
    assert out == ["-DOCSTART- O", "", "EU O B-loc", "rejects O O"]


class _FakeTagger:
    """Stands in for Tagger in predict_file: records its input, tags each first word B-loc."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.sentences: list[list[str]] = []
        self.documents: list[str | None] = []

    def predict(self, texts):
        self.texts += list(texts)
        return [[] for _ in texts]

    def predict_tags(self, sentences, documents=None):
        self.sentences += [list(s) for s in sentences]
        self.documents += list(documents or [])
        return [["B-loc"] + ["O"] * (len(s) - 1) for s in sentences]


# --- 2. byte order marks ----------------------------------------------------------------------


def test_a_bom_before_docstart_is_no_word_and_the_document_keeps_its_id(tmp_path: Path):
    path = tmp_path / "bom.txt"
    path.write_bytes(codecs.BOM_UTF8 + CONLL.encode())
    read_back = read_sentences(path, "conll")
    assert [s.words for s in read_back] == WORDS
    assert [s.document for s in read_back] == ["bom.txt:1", "bom.txt:1"]


@pytest.mark.parametrize("format", ["conll", "jsonl", "gmb"])
def test_a_bom_is_stripped_by_every_reader(tmp_path: Path, format: str):
    path = tmp_path / f"bom.{format}"
    if format == "conll":
        path.write_text("EU B-ORG\nrejects O\n")
    elif format == "jsonl":
        path.write_text(json.dumps({"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}) + "\n")
    else:
        write_gmb_csv(path, [(["EU", "rejects"], ["B-ORG", "O"])], encoding="utf-8")
    path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
    # GMB's own encoding is cp1252, but a UTF-8 BOM says what the file is
    encoding = "cp1252" if format == "gmb" else None
    assert read(path, format, encoding=encoding) == [(("EU", "rejects"), ("B-ORG", "O"))]


# --- 3. tag schemes, per file -----------------------------------------------------------------


def _bioes_test_file(path: Path, sentences) -> Path:
    from nerlit.data.schemes import iob2_to_bioes

    return write_conll(path, [(w, iob2_to_bioes(t)) for w, t in sentences])


def test_each_file_gets_its_own_scheme(tmp_path: Path):
    train = write_conll(tmp_path / "train.txt", make_sentences(20))
    gold = make_sentences(8, seed=1)
    val = write_conll(tmp_path / "val.txt", gold, iob1=True)
    test = _bioes_test_file(tmp_path / "test.txt", gold)
    corpus, report = load_corpus(train, val, test)
    assert report.schemes == {"train": "iob2", "val": "iob1", "test": "bioes"}
    expected = [tuple(t) for _, t in gold]
    assert [s.tags for s in corpus.val] == expected and [s.tags for s in corpus.test] == expected
    support = sum(len(spans(t)) for t in expected)
    assert sum(len(spans(s.tags)) for s in corpus.test) == support, "no gold entity lost"
    assert set(corpus.labels()) >= {t for s in corpus.test for t in s.tags}


def test_a_bioes_test_file_beside_iob2_train_has_no_unknown_label(tmp_path: Path):
    """Before: 'label S-per never occurs in train ... run with data.unknown_labels=o', and that
    advice tagged every S-/E- entity O (support 15 -> 8)."""
    from nerlit.data.datamodule import apply_unknown_labels

    train = write_conll(tmp_path / "train.txt", make_sentences(20))
    gold = make_sentences(6, seed=2)
    corpus, _ = load_corpus(train, train, _bioes_test_file(tmp_path / "test.txt", gold))
    assert apply_unknown_labels(corpus, corpus.labels(), "error") == {"val": 0, "test": 0}
    assert [s.tags for s in corpus.test] == [tuple(t) for _, t in gold]


# --- 4. JSONL values --------------------------------------------------------------------------

_TEXT = "Angela Merkel visited Paris"


def _entity(**changes) -> dict:
    return {"text": _TEXT, "entities": [{"start": 0, "end": 13, "label": "per", **changes}]}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (_entity(label=""), r"entity 1: 'label' must be an entity type .* got ''"),
        (_entity(label=None), r"entity 1: 'label' must be an entity type .* got None"),
        (_entity(label="B-PER"), r"'label' 'B-PER' is a tag, not a type: give 'PER'"),
        (_entity(label="O"), r"'label' 'O' .* no entity"),
        (_entity(label="new person"), r"'label' 'new person' holds whitespace"),
        (_entity(start=0.9), r"entity 1: 'start' must be an integer character offset, got 0.9"),
        (_entity(end="13"), r"entity 1: 'end' must be an integer character offset, got '13'"),
        (_entity(end=True), r"entity 1: 'end' must be an integer character offset, got True"),
        (_entity(start=5, end=5), r"entity 1 \[5, 5\) is empty \(start == end\)"),
        (_entity(start=13, end=0), r"entity 1 \[13, 0\) ends before it starts"),
        ({"text": _TEXT, "entities": ["per"]}, r"entity 1 must be an object"),
        ({"tokens": [None, "x"], "tags": ["O", "O"]}, r"token 1 is None: tokens must be"),
        ({"tokens": ["x", 42], "tags": ["O", "O"]}, r"token 2 is 42: tokens must be"),
        ({"tokens": ["x", " "], "tags": ["O", "O"]}, r"token 2 is ' ': tokens must be"),
        (
            {"tokens": ["a"], "tags": ["O"], "text": "b c"},
            r"the record has both 'tokens' and 'text'",
        ),
        (
            {"tokens": ["a"], "tags": ["O"], "entities": []},
            r"'entities' belongs with 'text', not with 'tokens'",
        ),
        ({"text": "a", "tags": ["O"]}, r"'tags' belongs with 'tokens', not with 'text'"),
        (["a"], r"the line is a JSON array, not an object"),
    ],
)
def test_jsonl_values_are_validated(tmp_path: Path, record, message: str):
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps({"tokens": ["ok"], "tags": ["O"]}) + "\n" + json.dumps(record))
    with pytest.raises(CorpusFormatError, match=message) as error:
        read_sentences(path, "jsonl")
    one_line(error, path, 2)


def test_valid_jsonl_entities_still_read(tmp_path: Path):
    path = tmp_path / "ok.jsonl"
    record = {"text": _TEXT, "entities": [{"start": 0, "end": 13, "label": "per"}], "id": 7}
    path.write_text(json.dumps(record) + "\n")
    assert read(path, "jsonl") == [(tuple(_TEXT.split()), ("B-per", "I-per", "O", "O"))]


# --- 5. an explicit scheme that the file's tags contradict ------------------------------------


@pytest.mark.parametrize("scheme", ["iob2", "iob1"])
def test_bioes_tags_under_an_iob_scheme_name_the_line_and_the_fix(tmp_path: Path, scheme: str):
    path = tmp_path / "t.txt"
    path.write_text("Angela B-PER\nMerkel E-PER\n")
    with pytest.raises(CorpusFormatError) as error:
        load_corpus(path, path, path, scheme=scheme)
    message = one_line(error, path, 2)
    assert f"tag 'E-PER' is not {scheme.upper()}" in message
    assert "data.scheme=auto" in message and "data.scheme=bioes" in message
    with pytest.raises(CorpusFormatError, match=r"line 2: tag 'E-PER'"):
        load_file(path, scheme=scheme)


def test_the_gmb_preset_scheme_on_a_bioes_csv_is_one_line(tmp_path: Path):
    path = write_gmb_csv(tmp_path / "g.csv", [(["Angela", "Merkel"], ["B-per", "E-per"])])
    with pytest.raises(CorpusFormatError) as error:
        load_corpus(path, format="gmb", encoding="cp1252", scheme="iob2")
    assert "tag 'E-per' is not IOB2" in one_line(error, path, 3)


# --- 6. undecodable bytes, broken gzip --------------------------------------------------------


def test_bytes_undefined_in_cp1252_name_file_line_and_byte(tmp_path: Path):
    path = tmp_path / "g.csv"
    path.write_bytes(b"Sentence #,Word,POS,Tag\r\nSentence: 1,a,NN,O\r\n,b\x81c,NN,O\r\n")
    with pytest.raises(CorpusFormatError) as error:
        read_sentences(path, "gmb", encoding="cp1252")
    message = one_line(error, path, 3)
    assert "byte 0x81 at column 3 is not cp1252" in message and "data.encoding=" in message
    gz = tmp_path / "g.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(CorpusFormatError, match="line 3: byte 0x81"):
        read_sentences(gz, "gmb", encoding="cp1252")


@pytest.mark.parametrize("damage", ["not gzip", "truncated", "corrupt"])
def test_a_broken_gzip_file_is_one_line(tmp_path: Path, damage: str):
    data = gzip.compress(b"Sentence #,Word,POS,Tag\r\n" + b"Sentence: 1,a,NN,O\r\n" * 500)
    path = tmp_path / "g.csv.gz"
    if damage == "not gzip":
        path.write_bytes(b"Sentence #,Word,POS,Tag\r\n")
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(data[:20] + bytes(64) + data[84:])
    with pytest.raises(CorpusFormatError) as error:
        read_sentences(path, "gmb")
    assert "not a readable gzip file" in one_line(error, path, None)


def test_a_gzip_file_without_gz_in_its_name_is_still_read(tmp_path: Path):
    path = tmp_path / "train.txt"
    path.write_bytes(gzip.compress(CONLL.encode()))
    assert [s.words for s in read_sentences(path, "conll")] == WORDS


def test_an_unknown_encoding_name_is_one_line(tmp_path: Path):
    path = write_conll(tmp_path / "t.txt", make_sentences(2))
    with pytest.raises(DataError, match="data.encoding='utf-9' is not an encoding"):
        read_sentences(path, "conll", encoding="utf-9")


# --- 7. UTF-16 and UTF-32 ---------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32", "utf-32-be", "utf-8-sig"])
def test_bom_marked_unicode_files_are_detected(tmp_path: Path, codec: str):
    text = CONLL.replace("EU", "\u00c9U\u2028")
    bom = {"utf-16-be": codecs.BOM_UTF16_BE, "utf-32-be": codecs.BOM_UTF32_BE}.get(codec, b"")
    path = tmp_path / "u.txt"
    path.write_bytes(bom + text.replace("\n", "\r\n").encode(codec))
    expected = [(("\u00c9U\u2028", "rejects"), TAGS[0]), (WORDS[1], TAGS[1])]
    assert read(path) == expected
    jsonl = tmp_path / "u.jsonl"
    jsonl.write_bytes(bom + (json.dumps({"tokens": ["x"], "tags": ["O"]}) + "\n").encode(codec))
    assert read(jsonl, "jsonl") == [(("x",), ("O",))]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-32"])
def test_an_explicit_utf16_or_utf32_encoding_works(tmp_path: Path, codec: str):
    path = tmp_path / "u.txt"
    path.write_bytes(CONLL.encode(codec))
    assert [s.words for s in read_sentences(path, "conll", encoding=codec)] == WORDS


def test_utf16_without_a_bom_is_named_not_read_as_nul_soup(tmp_path: Path):
    path = tmp_path / "u.txt"
    path.write_bytes("EU B-ORG\nrejects O\n".encode("utf-16-le"))
    with pytest.raises(CorpusFormatError) as error:
        read_sentences(path, "conll")
    message = one_line(error, path, 1)
    assert "NUL" in message and "data.encoding=utf-16-le" in message


def test_read_lines_is_the_one_rule(tmp_path: Path):
    path = tmp_path / "x.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + "a\rb\r\n\nc\u2028d\n".encode("utf-16-le"))
    assert list(read_lines(path)) == [(1, "a"), (2, "b"), (3, ""), (4, "c\u2028d")]
    path.write_bytes(b"no final newline\r")
    assert list(read_lines(path)) == [(1, "no final newline")]
    path.write_bytes(b"")
    assert list(read_lines(path)) == []


# --- 8. messages that pointed elsewhere -------------------------------------------------------


def test_conllu_comment_lines_are_skipped_but_a_hashtag_word_is_kept(tmp_path: Path):
    path = tmp_path / "u.conllu"
    path.write_text(
        "# newdoc id = d1\n\n"
        "# sent_id = 1\n# text = EU rejects #\nEU\tB-ORG\nrejects\tO\n#\tO\n\n"
        "# O\nnow O\n\n"  # the hashtag word '#' starting a sentence: a word line, not a comment
        "# S-PER\n"  # a sentence of one word, '#'
    )
    assert read(path) == [
        (("EU", "rejects", "#"), ("B-ORG", "O", "O")),
        (("#", "now"), ("O", "O")),
        (("#",), ("S-PER",)),
    ]
    assert read_sentences(path, "conll")[0].id == "u.conllu:5"


def test_conllu_comments_pass_through_predict(tmp_path: Path):
    source = tmp_path / "in.conllu"
    source.write_text("# sent_id = 1\n# text = EU rejects\nEU NNP\nrejects VBZ\n")
    tagger = _FakeTagger()
    predict_file(tagger, source, tmp_path / "out.conll", format="conll", progress=False)
    assert tagger.sentences == [["EU", "rejects"]]
    out = (tmp_path / "out.conll").read_text().splitlines()
    assert out == ["# sent_id = 1", "# text = EU rejects", "EU NNP B-loc", "rejects VBZ O"]


def test_trailing_whitespace_makes_no_empty_tag_column(tmp_path: Path):
    path = tmp_path / "t.tsv"
    path.write_text("New York\tB-LOC\t\nis\tO \t\n\nfine O  \n")
    assert read(path) == [(("New York", "is"), ("B-LOC", "O")), (("fine",), ("O",))]


def test_an_empty_jsonl_entity_is_called_empty(tmp_path: Path):
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps(_entity(start=6, end=6)) + "\n")
    with pytest.raises(CorpusFormatError) as error:
        read_sentences(path, "jsonl")
    message = one_line(error, path, 1)
    assert "is empty" in message and "outside" not in message


def test_a_home_relative_path_is_expanded(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_conll(tmp_path / "train.txt", make_sentences(10))
    corpus, _ = load_corpus("~/train.txt")
    assert len(corpus.train) + len(corpus.val) + len(corpus.test) == 10
    assert corpus.sources["train"] == str(tmp_path / "train.txt")
    assert len(load_file("~/train.txt")[0]) == 10


# --- 9. empty carved splits -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "given", "sizes"),
    [(4, (), "train 3, val 0, test 1"), (1, (), "train 1, val 0, test 0"), (1, ("val",), "")],
)
def test_an_empty_carved_split_stops_before_training(tmp_path: Path, n, given, sizes):
    train = write_conll(tmp_path / "train.txt", make_sentences(n))
    other = write_conll(tmp_path / "other.txt", make_sentences(3, seed=1))
    files = {split: other for split in given}
    with pytest.raises(DataError) as error:
        load_corpus(train, files.get("val"), files.get("test"))
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{train}: "), message
    assert sizes in message and "at least 1 sentence" in message
    assert "data.split_fractions" in message and re.search(r"at least \d+ sentences", message)


def test_the_train_size_named_is_enough(tmp_path: Path):
    train = write_conll(tmp_path / "train.txt", make_sentences(4))
    with pytest.raises(DataError, match=r"a train file of at least 8 sentences"):
        load_corpus(train)
    for n in (8, 9, 10):
        corpus, _ = load_corpus(write_conll(tmp_path / "train.txt", make_sentences(n)))
        assert all(corpus.splits().values())


def test_a_zero_split_fraction_is_named(tmp_path: Path):
    train = write_conll(tmp_path / "train.txt", make_sentences(50))
    with pytest.raises(DataError, match=r"test 0 .*data.split_fractions=\[0.9, 0.1, 0.0\]"):
        load_corpus(train, split_fractions=[0.9, 0.1, 0.0])


def test_a_split_of_only_empty_sentences_is_named(tmp_path: Path):
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"tokens": ["EU"], "tags": ["B-ORG"]}) + "\n")
    val = tmp_path / "val.jsonl"
    val.write_text(json.dumps({"tokens": [], "tags": []}) + "\n")
    with pytest.raises(DataError, match=r"val\.jsonl: val has 0 sentences"):
        load_corpus(train, val, train, format="jsonl")


# --- anything else --------------------------------------------------------------------------


def test_a_gmb_cell_spanning_lines_is_an_error_not_a_joined_word(tmp_path: Path):
    path = tmp_path / "g.csv"
    path.write_bytes(b'Sentence #,Word,POS,Tag\nSentence: 1,"a\nb",NN,O\n,c,NN,O\n')
    with pytest.raises(CorpusFormatError) as error:
        read_sentences(path, "gmb")
    assert "line break" in one_line(error, path, 2)


def test_nul_bytes_in_a_utf8_file_are_named(tmp_path: Path):
    path = tmp_path / "n.txt"
    path.write_bytes(b"EU B-ORG\nrej\x00ects O\n")
    with pytest.raises(CorpusFormatError, match="line 2: .*NUL"):
        read_sentences(path, "conll")


# --- hostile input: files built to break a reader -------------------------------------------


def test_cr_cr_lf_is_one_line_end_and_logged(tmp_path: Path, caplog):
    """A Windows file converted to Windows line ends again: every line was followed by a blank
    one, so each sentence fell apart into one-word sentences ('repaired 41 invalid tags')."""
    path = tmp_path / "twice.txt"
    path.write_bytes(CONLL.replace("\n", "\r\r\n").encode())
    with caplog.at_level("WARNING", logger="nerlit.data.readers"):
        read_back = read_sentences(path, "conll")
    assert [s.words for s in read_back] == WORDS and [s.tags for s in read_back] == TAGS
    assert [s.id for s in read_back] == ["twice.txt:3", "twice.txt:6"]
    assert caplog.text.count("7 lines end in \\r\\r\\n") == 1
    path.write_bytes(b"EU B-ORG\r\r\nrejects O\r\r\n\r\r\nPeter XX\r\r\n")
    with pytest.raises(CorpusFormatError) as error:
        read_sentences(path, "conll")
    assert "unknown tag 'XX'" in one_line(error, path, 4)


def test_a_stray_byte_in_a_utf8_file_is_named_not_read_as_cp1252(tmp_path: Path):
    """One cp1252 byte made the whole file cp1252: "Zürich" became "ZÃ¼rich"."""
    path = tmp_path / "mixed.txt"
    path.write_bytes("Zürich B-LOC\nis O\n\n".encode() + b"Caf\xe9 B-ORG\nna\xefve O\n")
    with pytest.raises(CorpusFormatError) as error:
        read_sentences(path, "conll")
    message = one_line(error, path, 4)
    assert "byte 0xe9 at column 4 is not UTF-8, 'é' in cp1252" in message
    assert "'ü'" in message and "and 1 more bytes that are not UTF-8" in message
    assert "data.encoding=cp1252" in message and "fix the byte" in message
    assert read(path, encoding="cp1252")[0][0] == ("ZÃ¼rich", "is")  # asked for, so done


def test_a_file_with_no_utf8_character_still_falls_back_naming_the_byte(tmp_path: Path, caplog):
    path = tmp_path / "w.txt"
    path.write_bytes(b"Caf\xe9 B-ORG\nis O\n\nna\xefve O\n")
    with caplog.at_level("WARNING", logger="nerlit.data.readers"):
        assert read(path)[0][0] == ("Café", "is")
    assert "w.txt is not UTF-8 (byte 0xe9 at line 1, and 1 more) and holds no UTF-8" in (
        caplog.text
    )


@pytest.mark.parametrize(
    ("format", "content", "line", "problem"),
    [
        ("conll", "EU\tB-ORG\n\tB-PER\n", 2, "the token (column 0) is empty"),
        ("conll", "1\tEU\tB-ORG\n2\t \tO\n", 2, "the token (column 1) is empty"),
        ("gmb", "Sentence #,Word,POS,Tag\nSentence: 1,EU,NNP,B-org\n,,NN,B-per\n", 3, "''"),
        ("gmb", "Sentence #,Word,POS,Tag\nSentence: 1, ,NNP,B-org\n", 2, "' '"),
    ],
)
def test_an_empty_word_is_refused(tmp_path: Path, format, content, line, problem):
    path = tmp_path / f"e.{format}"
    path.write_text(content)
    column = 1 if content.startswith("1\t") else 0
    with pytest.raises(CorpusFormatError) as error:
        read_sentences(path, format, token_column=column, encoding="utf-8")
    message = one_line(error, path, line)
    assert problem in message and "a character other than whitespace" in message


@pytest.mark.parametrize("format", ["conll", "jsonl"])
def test_a_byte_order_mark_inside_the_file_is_refused(tmp_path: Path, format: str):
    path = tmp_path / f"cat.{format}"
    if format == "conll":
        one = "EU B-ORG\nrejects O\n\n"
    else:
        one = json.dumps({"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}) + "\n"
    path.write_bytes(codecs.BOM_UTF8 + one.encode() + codecs.BOM_UTF8 + one.encode())
    with pytest.raises(CorpusFormatError) as error:
        read_sentences(path, format)
    message = one_line(error, path, one.count("\n") + 1)
    assert "a byte order mark (U+FEFF) inside the file, at column 1" in message
    assert "two files concatenated?" in message and "remove it" in message


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"tokens": ["EU", "a\nb"], "tags": ["O", "O"]}, r"token 2 is 'a\\nb': .*line break"),
        ({"tokens": ["a\rb"], "tags": ["O"]}, r"token 1 is 'a\\rb': .*line break"),
        (
            {"tokens": ["x", "-DOCSTART-"], "tags": ["O", "O"]},
            r"token 2 is '-DOCSTART-': .*document marker",
        ),
        ({"tokens": ["ok", "a\ud800"], "tags": ["O", "O"]}, r"token 2 .* lone surrogate"),
        ({"text": "Hi \udc00there", "entities": []}, r"'text' holds a lone surrogate"),
        (
            {"text": "Hi", "entities": [{"start": 0, "end": 2, "label": "p\ud83d"}]},
            r"entity 1: 'label' .* lone surrogate",
        ),
        ({"tokens": ["x"], "tags": ["B-\ud800"]}, r"tag .* lone surrogate"),
    ],
)
def test_jsonl_tokens_that_cannot_be_written_back_are_refused(tmp_path: Path, record, message):
    path = tmp_path / "w.jsonl"
    path.write_text(json.dumps({"tokens": ["ok"], "tags": ["O"]}) + "\n" + json.dumps(record))
    with pytest.raises(CorpusFormatError, match=message) as error:
        read_sentences(path, "jsonl")
    one_line(error, path, 2)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[" * 100_000 + "]" * 100_000, "JSON with arrays or objects nested more deeply"),
        (
            '{"text": "Hi", "entities": [{"start": 0, "end": 1' + "0" * 5000 + ', "label": "x"}]}',
            "JSON with an integer of 5001 digits, more than Python reads (4300)",
        ),
    ],
)
def test_json_beyond_pythons_limits_is_one_line(tmp_path: Path, line: str, problem: str):
    path = tmp_path / "deep.jsonl"
    path.write_text(json.dumps({"tokens": ["ok"], "tags": ["O"]}) + "\n" + line + "\n")
    with pytest.raises(CorpusFormatError) as error:
        read_sentences(path, "jsonl")
    assert problem in one_line(error, path, 2)


def test_the_token_column_cannot_be_the_tag_column(tmp_path: Path):
    path = tmp_path / "two.txt"
    path.write_text("EU B-ORG\nrejects O\n")
    with pytest.raises(CorpusFormatError) as error:
        read_sentences(path, "conll", token_column=1)
    message = one_line(error, path, 1)
    assert "data.token_column=1 and data.tag_column=-1 are the same column" in message
    assert "column 1 of the file's 2 columns" in message
    path.write_text("EU NNP B-ORG\n")
    with pytest.raises(CorpusFormatError, match="token_column=0 and data.tag_column=-3"):
        read_sentences(path, "conll", tag_column=-3)

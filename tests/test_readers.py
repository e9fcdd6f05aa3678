"""Readers for every format on fixture files; every malformed case names the file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from nerlit.data.readers import (
    conll_blocks,
    read_conll_file,
    read_gmb_file,
    read_jsonl_file,
    read_sentences,
)
from nerlit.errors import CorpusFormatError
from tests.conftest import make_sentences, write_conll, write_gmb_csv

# --- GMB ---------------------------------------------------------------------------------


def test_gmb_forward_fill(gmb_file: Path):
    sentences = read_gmb_file(gmb_file)
    assert len(sentences) == 120
    assert sentences[0].id == "Sentence: 1"
    words, tags = make_sentences(120)[0]
    assert sentences[0].words == tuple(words) and sentences[0].tags == tuple(tags)


def test_gmb_cp1252_curly_quotes_and_gzip(tmp_path: Path):
    sentences = [(["He", "said", "\u2019hello\u2019", "\u2013", "Caf\u00e9"], ["O"] * 5)] * 3
    plain = write_gmb_csv(tmp_path / "g.csv", sentences, encoding="cp1252")
    gz = tmp_path / "g.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    words = read_gmb_file(gz)[0].words
    assert words[2:] == ("\u2019hello\u2019", "\u2013", "Caf\u00e9")
    # latin-1 would turn 0x92 into a C1 control character, which tokenizers drop
    assert read_gmb_file(gz, encoding="latin-1")[0].words[2] == "\x92hello\x92"


def test_gmb_bad_row_names_file_and_line(tmp_path: Path):
    path = tmp_path / "bad.csv"
    path.write_text("Sentence #,Word,POS,Tag\nSentence: 1,Hi,NN,O\n,there,NN\n")
    with pytest.raises(CorpusFormatError, match=r"bad\.csv, line 3: 3 columns"):
        read_gmb_file(path)


def test_gmb_unknown_tag_names_line(tmp_path: Path):
    path = tmp_path / "bad.csv"
    path.write_text("Sentence #,Word,POS,Tag\nSentence: 1,Hi,NN,O\n,there,NN,PERSON\n")
    with pytest.raises(CorpusFormatError, match=r"line 3: unknown tag 'PERSON'"):
        read_gmb_file(path)


def test_gmb_empty_file(tmp_path: Path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CorpusFormatError, match=r"empty\.csv, line 1: the file is empty"):
        read_gmb_file(tmp_path / "empty.csv")


# --- CoNLL -------------------------------------------------------------------------------


def test_conll_docstart_dropped_and_tags_kept(tmp_path: Path):
    sentences = make_sentences(5)
    read = read_conll_file(write_conll(tmp_path / "train.txt", sentences, iob1=True))
    assert len(read) == 5
    assert all("-DOCSTART-" not in s.words for s in read)
    assert read[0].tags[0] == "I-per", "the reader keeps the file's scheme; conversion is later"


def test_conll_crlf_and_whitespace_only_lines(tmp_path: Path):
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"EU NNP B-ORG\r\nrejects VBZ O\r\n \t \r\nPeter NNP B-PER\r\n")
    read = read_conll_file(path)
    assert [s.words for s in read] == [("EU", "rejects"), ("Peter",)]
    assert read[1].tags == ("B-PER",)


def test_conll_tab_separated_token_with_space(tmp_path: Path):
    path = tmp_path / "tabs.tsv"
    path.write_text("New York\tB-LOC\nis\tO\n\nfine\tO\n")
    read = read_conll_file(path)
    assert read[0].words == ("New York", "is")


def test_conll_blocks_keep_the_lines_and_need_no_tag_column():
    lines = ["Rome", "-DOCSTART- -X- O", "", "New York\tNNP", "is  VBZ", " ", "", "Paris"]
    blocks = list(conll_blocks(enumerate(lines, start=1), "f.txt"))
    assert [(b.start, b.lines, b.columns, b.document) for b in blocks] == [
        (1, ["Rome"], [["Rome"]], None),
        (2, ["-DOCSTART- -X- O"], [], "f.txt:2"),
        (3, [""], [], "f.txt:2"),
        (4, ["New York\tNNP", "is  VBZ"], [["New York", "NNP"], ["is", "VBZ"]], "f.txt:2"),
        (6, [" "], [], "f.txt:2"),
        (7, [""], [], "f.txt:2"),
        (8, ["Paris"], [["Paris"]], "f.txt:2"),
    ]


def test_conll_u_newdoc_comments_start_documents(tmp_path: Path):
    path = tmp_path / "u.conllu"
    path.write_text(
        "# newdoc id = a\n# sent_id = 1\n1\tRome\tB-LOC\n\n# sent_id = 2\n1\tis\tO\n\n"
        "# newdoc\n1\tParis\tB-LOC\n\n#newdocs 3\n1\tthere\tO\n"
    )
    read = read_conll_file(path, token_column=1, tag_column=2)
    assert [s.words for s in read] == [("Rome",), ("is",), ("Paris",), ("there",)]
    assert [s.document for s in read] == ["u.conllu:1", "u.conllu:1", "u.conllu:8", "u.conllu:8"]


def test_conll_columns_are_configurable(tmp_path: Path):
    path = tmp_path / "cols.txt"
    path.write_text("1 Paris B-LOC NNP\n2 is O VBZ\n")
    (sentence,) = read_conll_file(path, token_column=1, tag_column=2)
    assert sentence.words == ("Paris", "is") and sentence.tags == ("B-LOC", "O")


def test_conll_latin1_fallback_and_explicit_encoding_error(tmp_path: Path):
    path = tmp_path / "latin.txt"
    path.write_bytes(b"Caf\xe9 B-ORG\nopens O\n")
    assert read_conll_file(path)[0].words[0] == "Caf\u00e9"
    match = r"latin\.txt, line 1: byte 0xe9 at column 4 is not utf-8 .*data\.encoding=latin-1"
    with pytest.raises(CorpusFormatError, match=match):
        read_conll_file(path, encoding="utf-8")


def test_conll_wrong_column_count_names_line(tmp_path: Path):
    path = tmp_path / "bad.txt"
    path.write_text("EU NNP B-ORG\nrejects VBZ O\n\nGerman JJ\n")
    with pytest.raises(CorpusFormatError, match=r"bad\.txt, line 4: 2 columns. Expected 3"):
        read_conll_file(path)


def test_conll_unknown_tag_format_names_line(tmp_path: Path):
    path = tmp_path / "bad.txt"
    path.write_text("EU B-ORG\nrejects Other\n")
    with pytest.raises(CorpusFormatError, match=r"line 2: unknown tag 'Other'"):
        read_conll_file(path)


def test_conll_single_column_and_empty_file(tmp_path: Path):
    (tmp_path / "one.txt").write_text("EU\n")
    with pytest.raises(CorpusFormatError, match=r"one\.txt, line 1: 1 columns"):
        read_conll_file(tmp_path / "one.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(CorpusFormatError, match="no sentences"):
        read_conll_file(tmp_path / "empty.txt")


def test_missing_file_is_clear(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"nope\.txt: no such corpus file"):
        read_sentences(tmp_path / "nope.txt", "conll")


# --- JSONL -------------------------------------------------------------------------------


def _jsonl(path: Path, *records) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


def test_jsonl_tokens_and_offsets(tmp_path: Path):
    text = "Angela Merkel visited Iraq's capital on Monday."
    path = _jsonl(
        tmp_path / "d.jsonl",
        {"tokens": ["EU", "rejects"], "tags": ["B-org", "O"]},
        {
            "text": text,
            "entities": [
                {"start": 0, "end": 13, "label": "per"},
                {"start": 22, "end": 26, "label": "geo"},
            ],
        },
    )
    first, second = read_jsonl_file(path)
    assert first.words == ("EU", "rejects")
    assert second.words == (
        "Angela",
        "Merkel",
        "visited",
        "Iraq",
        "'s",
        "capital",
        "on",
        "Monday",
        ".",
    )
    assert second.tags == ("B-per", "I-per", "O", "B-geo", "O", "O", "O", "O", "O")
    assert second.id == "d.jsonl:2"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ('{"tokens": ["a"], "tags": ["O"]', r"line 2: not valid JSON"),
        (
            '{"tokens": ["a"], "tags": ["O"], "tags": ["B-per"]}',
            r"line 2: key 'tags' appears twice in one object. Expected give each key once",
        ),
        (
            '{"text": "Hi", "entities": [{"start": 0, "end": 2, "label": "x", "end": 1}]}',
            r"line 2: key 'end' appears twice",
        ),
        (
            {"text": "Hi there", "entities": [{"start": 3, "end": 20, "label": "x"}]},
            r"line 2: entity 1 \[3, 20\) falls outside the text of 8 characters",
        ),
        (
            {"text": "Angela Merkel", "entities": [{"start": 0, "end": 4, "label": "per"}]},
            r"line 2: entity 1 \[0, 4\) 'Ange' cuts the word 'Angela'",
        ),
        (
            {
                "text": "Angela Merkel",
                "entities": [
                    {"start": 0, "end": 13, "label": "per"},
                    {"start": 7, "end": 13, "label": "per"},
                ],
            },
            r"line 2: entity 2 \[7, 13\) overlaps another entity",
        ),
        ({"tokens": ["a", "b"], "tags": ["O"]}, r"line 2: 'tokens' and 'tags' must be lists"),
        ({"tokens": ["a"], "tags": ["PER"]}, r"line 2: unknown tag 'PER'"),
        ({"words": ["a"]}, r"line 2: the record has neither 'tokens' nor 'text'"),
        ({"text": "a", "entities": [{"start": 0}]}, r"line 2: entity 1 lacks 'end'"),
    ],
)
def test_jsonl_malformed_lines(tmp_path: Path, record, message: str):
    path = _jsonl(tmp_path / "bad.jsonl", {"tokens": ["ok"], "tags": ["O"]}, record)
    with pytest.raises(CorpusFormatError, match=message) as error:
        read_jsonl_file(path)
    assert "bad.jsonl" in str(error.value) and "Expected" in str(error.value)

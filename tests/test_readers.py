"""GMB and CoNLL readers on fixture files written here; errors name the file and the line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from nerlit.data.readers import CorpusFormatError, read_conll, read_conll_file, read_gmb
from nerlit.data.schemes import iob1_to_iob2
from tests.conftest import make_sentences, write_conll, write_gmb_csv


def test_iob1_to_iob2():
    assert iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC"]) == ["B-PER", "I-PER", "O", "B-LOC"]
    # IOB1 uses B- only between two adjacent entities of the same type
    assert iob1_to_iob2(["I-PER", "B-PER", "I-PER"]) == ["B-PER", "B-PER", "I-PER"]
    assert iob1_to_iob2(["I-PER", "I-ORG"]) == ["B-PER", "B-ORG"]


def test_gmb_forward_fill_and_split(gmb_file: Path):
    corpus = read_gmb(gmb_file, split_seed=1)
    assert (len(corpus.train), len(corpus.val), len(corpus.test)) == (96, 12, 12)
    all_ids = [s.id for split in corpus.splits().values() for s in split]
    assert sorted(all_ids) == sorted(f"Sentence: {i}" for i in range(1, 121))
    first = next(s for s in corpus.train + corpus.val + corpus.test if s.id == "Sentence: 1")
    assert first.words == tuple(make_sentences(120)[0][0])
    assert first.tags == tuple(make_sentences(120)[0][1])
    again = read_gmb(gmb_file, split_seed=1)
    assert [s.id for s in again.test] == [s.id for s in corpus.test]
    other = read_gmb(gmb_file, split_seed=2)
    assert [s.id for s in other.test] != [s.id for s in corpus.test]


def test_gmb_cp1252_curly_quotes_and_gzip(tmp_path: Path):
    sentences = [(["He", "said", "\u2019hello\u2019", "\u2013", "Caf\u00e9"], ["O"] * 5)] * 10
    plain = write_gmb_csv(tmp_path / "g.csv", sentences, encoding="cp1252")
    gz = tmp_path / "g.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    corpus = read_gmb(gz)
    words = corpus.train[0].words
    assert words[2] == "\u2019hello\u2019" and words[3] == "\u2013" and words[4] == "Caf\u00e9"
    # latin-1 would turn 0x92 into a C1 control character, which tokenizers drop
    latin = read_gmb(gz, encoding="latin-1").train[0].words
    assert latin[2] == "\x92hello\x92"


def test_gmb_iob_tags_are_made_iob2(tmp_path: Path):
    path = write_gmb_csv(tmp_path / "g.csv", [(["Big", "Apple"], ["I-geo", "I-geo"])] * 10)
    assert read_gmb(path).train[0].tags == ("B-geo", "I-geo")


def test_gmb_bad_row_names_file_and_line(tmp_path: Path):
    path = tmp_path / "bad.csv"
    path.write_text("Sentence #,Word,POS,Tag\nSentence: 1,Hi,NN,O\n,there,NN\n")
    with pytest.raises(CorpusFormatError, match=r"bad\.csv, line 3: 3 columns"):
        read_gmb(path)


def test_gmb_unknown_tag_names_line(tmp_path: Path):
    path = tmp_path / "bad.csv"
    path.write_text("Sentence #,Word,POS,Tag\nSentence: 1,Hi,NN,O\n,there,NN,PERSON\n")
    with pytest.raises(CorpusFormatError, match=r"line 3: unknown tag 'PERSON'"):
        read_gmb(path)


def test_gmb_empty_file(tmp_path: Path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(CorpusFormatError, match="empty"):
        read_gmb(path)


def test_conll_iob1_docstart(tmp_path: Path):
    sentences = make_sentences(5)
    path = write_conll(tmp_path / "train.txt", sentences, iob1=True)
    assert "I-per" in path.read_text() and "B-per" not in path.read_text()
    read = read_conll_file(path, scheme="iob1")
    assert len(read) == 5
    assert all(s.words[0] != "-DOCSTART-" for s in read)
    assert [list(s.tags) for s in read] == [t for _, t in sentences]


def test_conll_corpus_and_bad_line(tmp_path: Path):
    files = [
        write_conll(tmp_path / f"{n}.txt", make_sentences(4, seed=i)) for i, n in enumerate("abc")
    ]
    corpus = read_conll(*files)
    assert (len(corpus.train), len(corpus.val), len(corpus.test)) == (4, 4, 4)
    bad = tmp_path / "bad.txt"
    bad.write_text("EU NNP B-ORG\nrejects VBZ\n")
    with pytest.raises(CorpusFormatError, match=r"bad\.txt, line 2: 2 columns"):
        read_conll_file(bad)

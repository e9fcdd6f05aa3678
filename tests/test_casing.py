"""Casing features: a class per word, on each subword, learned, and used alike by Tagger."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from nerlit import Tagger
from nerlit.data import casing as C
from nerlit.data.casing import word_casing
from nerlit.data.encoding import SubwordEncoder, collate_windows
from nerlit.data.types import Sentence
from nerlit.inference.hf_export import export_huggingface
from nerlit.models.module import NerModule
from nerlit.models.network import NerNetwork
from tests.conftest import tiny_checkpoint
from tests.test_inference import TEXTS


@pytest.mark.parametrize(
    "word, expected",
    [
        ("obama", C.LOWER),
        ("Obama", C.CAPITALIZED),
        ("I", C.CAPITALIZED),
        ("NATO", C.UPPER),
        ("U.S.", C.UPPER),
        ("McDonald", C.MIXED),
        ("iPhone", C.MIXED),
        ("1990", C.NUMBER),
        ("12:30", C.NUMBER),
        ("3rd", C.ALPHANUMERIC),
        (",", C.NO_LETTERS),
        ("😀", C.NO_LETTERS),
        ("São", C.CAPITALIZED),
        ("北京", C.LOWER),
    ],
)
def test_word_casing(word: str, expected: int):
    assert word_casing(word) == expected


def test_every_subword_carries_its_words_casing(cased_tokenizer):
    sentence = Sentence(("Schwarzenegger", "visited", "NATO", "."), ("B-per", "O", "B-org", "O"))
    encoder = SubwordEncoder(cased_tokenizer, max_length=64)
    (window,) = encoder.encode([sentence], {"O": 0, "B-per": 1, "B-org": 2})
    pieces = encoder.word_pieces(sentence.words)
    expected = [C.SPECIAL]
    for word, ids in zip(sentence.words, pieces):
        expected += [word_casing(word)] * len(ids)
    expected.append(C.SPECIAL)
    assert window.casings == expected
    short = Sentence(("x",), ("O",))
    batch = collate_windows(encoder.encode([sentence, short], {"O": 0, "B-per": 1, "B-org": 2}), 0)
    assert batch["casing_ids"][0].tolist() == expected
    assert batch["casing_ids"][1].tolist() == [C.SPECIAL, C.LOWER, C.SPECIAL] + [C.SPECIAL] * (
        len(expected) - 3
    )


def _batch(tokenizer, texts: list[str]) -> dict:
    sentences = [Sentence(tuple(t.split()), ("O",) * len(t.split())) for t in texts]
    return collate_windows(SubwordEncoder(tokenizer, 512).encode(sentences, {"O": 0}), 0)


def test_casing_starts_at_zero_and_then_separates_cased_from_lower_words(tmp_path_factory):
    module = NerModule.load_from_checkpoint(
        tiny_checkpoint(tmp_path_factory), weights_only=True, map_location="cpu"
    ).eval()
    plain = module.network
    cased = NerNetwork.build(module.hparams.encoder_config, module.labels, case_features=True)
    cased.model.load_state_dict(plain.model.state_dict())
    cased.eval()
    tagger = Tagger.load(tiny_checkpoint(tmp_path_factory))
    batch = _batch(tagger.tokenizer, ["Obama visited NATO", "obama visited nato"])
    args = (batch["input_ids"], batch["attention_mask"])
    with torch.no_grad():
        assert torch.allclose(cased(*args, batch["casing_ids"]), plain(*args))
        cased.casing.weight.normal_()
        assert not torch.allclose(cased(*args, batch["casing_ids"]), plain(*args))
    with pytest.raises(ValueError, match="casing_ids"):
        cased(*args)


def test_trained_casing_is_learned_and_tagger_uses_it(tmp_path_factory, tmp_path: Path, caplog):
    ckpt = tiny_checkpoint(tmp_path_factory, case_features=True)
    module = NerModule.load_from_checkpoint(ckpt, weights_only=True, map_location="cpu").eval()
    casing = module.network.casing
    assert casing is not None and casing.weight.abs().sum() > 0, "never trained"
    # make casing decisive, so that a Tagger ignoring it would disagree
    with torch.no_grad():
        casing.weight.normal_(std=3.0, generator=torch.Generator().manual_seed(0))
    strong = tmp_path / "strong.ckpt"
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["state_dict"]["network.casing.weight"] = casing.weight.detach().clone()
    torch.save(checkpoint, strong)

    tagger = Tagger.load(strong, decode="argmax", precision="fp32")
    words = [t.split() for t in TEXTS if t.strip()]
    batch = _batch(tagger.tokenizer, [" ".join(w) for w in words])
    with torch.no_grad():
        logits = module(batch["input_ids"], batch["attention_mask"], batch["casing_ids"])
    owned = batch["word_index"] >= 0
    expected = [
        [module.labels[y] for y in row[m].tolist()] for row, m in zip(logits.argmax(-1), owned)
    ]
    got = tagger.predict_tags(words)
    # predict_tags repairs spans to valid IOB2; compare the entity types per word instead
    assert [[t[2:] for t in row] for row in got] == [[t[2:] for t in row] for row in expected]
    tagger.network.casing = None
    assert tagger.predict_tags(words) != got, "the casing embeddings must change something"

    with caplog.at_level(logging.WARNING):
        exported = export_huggingface(strong, tmp_path / "export")
    assert "case_features" in caplog.text
    again = Tagger.load(exported, decode="argmax", precision="fp32")
    assert again.predict_tags(words) == got


def test_document_context_tokens_carry_their_words_casing(cased_tokenizer):
    doc = "d1"
    first = Sentence(("NATO", "met"), ("B-org", "O"), document=doc)
    second = Sentence(("Obama", "spoke", "."), ("B-per", "O", "O"), document=doc)
    encoder = SubwordEncoder(cased_tokenizer, max_length=64, context=8)
    labels = {"O": 0, "B-org": 1, "B-per": 2}
    _, window = encoder.encode([first, second], labels)
    assert window.context_tokens[0] > 0, "the fixture must give the second sentence context"
    assert len(window.casings) == len(window.input_ids)
    expected = [C.SPECIAL]
    for word in first.words + second.words:
        expected += [word_casing(word)] * len(encoder.word_pieces([word])[0])
    expected.append(C.SPECIAL)
    assert window.casings == expected

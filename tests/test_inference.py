"""Tagger on a tiny trained checkpoint: offsets, order, windows, odd input, loading alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from nerlit import Tagger
from nerlit.errors import ModelLoadError, OptionError
from nerlit.inference.hf_export import export_huggingface
from nerlit.inference.loading import TOKENIZER_KEY
from nerlit.inference.tagger import length_batches
from nerlit.models.decoding import allowed_transitions
from tests.conftest import RecordingBackend, make_sentences, tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def tagger(ckpt: Path) -> Tagger:
    return Tagger.load(ckpt, batch_size=4)


TEXTS = [
    "Angela Merkel visited Berlin with NATO on Monday.",
    "",
    "Iraq's U.S.-led forces met Obama in São Paulo 😀 on Friday , said Reuters .",
    "   ",
    "John Smith criticized Paris .",
    "Maria left New York with the United Nations on Monday , and Obama left Iraq .",
]


def _check_entities(text: str, entities) -> None:
    words_end = 0
    for e in entities:
        assert text[e.start : e.end] == e.text and e.text.strip() == e.text and e.text
        assert e.start >= words_end, "entities must not overlap and come in order"
        assert 0.0 <= e.score <= 1.0 and e.word_end > e.word_start
        words_end = e.end


def test_predict_returns_offsets_into_each_original_text_in_input_order(tagger: Tagger):
    results = tagger.predict(TEXTS)
    assert len(results) == len(TEXTS)
    assert results[1] == [] and results[3] == []
    for text, entities in zip(TEXTS, results):
        _check_entities(text, entities)
    # the same text alone gives the same entities: results are not mixed up by length sorting
    for i in (0, 2, 5):
        assert tagger.predict([TEXTS[i]])[0] == results[i]
    assert tagger.predict(TEXTS[2]) == [results[2]]


def test_batched_and_unbatched_scores_agree(ckpt: Path):
    words = [t.split() for t in TEXTS]
    one = Tagger.load(ckpt, batch_size=1).word_logits(words)
    many = Tagger.load(ckpt, batch_size=64).word_logits(words)
    assert [len(x) for x in one] == [len(w) for w in words]
    for a, b in zip(one, many):
        assert torch.allclose(a, b, atol=1e-5)


def test_pre_split_words_give_offsets_into_the_space_joined_text(tagger: Tagger):
    words = ["Angela", "Merkel", "visited", "Berlin", "."]
    (entities,) = tagger.predict([words])
    joined = " ".join(words)
    _check_entities(joined, entities)
    assert entities == tagger.predict([joined])[0]


def test_long_text_is_windowed_not_truncated(ckpt: Path):
    small = Tagger.load(ckpt, max_length=16, stride=4, decode="argmax")
    words = [w for s, _ in make_sentences(40, seed=3) for w in s]  # ~400 words, 16-token windows
    logits = small.word_logits([words])[0]
    assert logits.shape == (len(words), len(small.labels))
    assert torch.isfinite(logits).all()
    tags = small.predict_tags([words])[0]
    assert len(tags) == len(words)
    assert small.predict([words])[0][-1].word_end <= len(words)


def test_very_long_line_and_unicode(tagger: Tagger):
    text = " ".join(["Obama", "visited", "Zürich", "🇺🇸", "👩‍🔬", "東京", "naïve", "…"] * 300)
    (entities,) = tagger.predict([text])
    _check_entities(text, entities)
    assert tagger.predict_tags([text.split()])[0].__len__() == len(text.split())


def test_viterbi_output_is_always_valid_iob2(tagger: Tagger):
    tags = tagger.predict_tags([t.split() for t in TEXTS if t.strip()])
    for row in tags:
        for prev, tag in zip(["O", *row], row):
            if tag.startswith("I-"):
                assert prev[2:] == tag[2:], row


def test_decoders_can_differ_but_both_give_whole_word_spans(ckpt: Path):
    argmax = Tagger.load(ckpt, decode="argmax")
    transitions, first, _ = allowed_transitions(argmax.labels)
    assert not first[argmax.labels.index("I-per")]
    for text, entities in zip(TEXTS, argmax.predict(TEXTS)):
        _check_entities(text, entities)
    with pytest.raises(ValueError, match="decode"):
        Tagger.load(ckpt, decode="beam")


def test_checkpoint_is_self_contained(ckpt: Path, tmp_path: Path):
    """The run's tokenizer folder may be gone: the checkpoint carries the tokenizer files."""
    checkpoint = torch.load(ckpt, weights_only=True)
    assert "tokenizer.json" in checkpoint[TOKENIZER_KEY]
    checkpoint["hyper_parameters"]["tokenizer_dir"] = str(tmp_path / "gone")
    moved = tmp_path / "moved.ckpt"
    torch.save(checkpoint, moved)
    assert Tagger.load(moved).predict(TEXTS) == Tagger.load(ckpt).predict(TEXTS)

    del checkpoint[TOKENIZER_KEY]
    torch.save(checkpoint, moved)
    with pytest.raises(ModelLoadError, match="tokenizer_dir="):
        Tagger.load(moved)
    run_tokenizer = ckpt.parent.parent / "tokenizer"
    shutil.copytree(run_tokenizer, tmp_path / "tok")
    assert Tagger.load(moved, tokenizer_dir=tmp_path / "tok").predict(TEXTS)[0] is not None


def test_load_errors_name_the_path_and_the_fix(tmp_path: Path):
    with pytest.raises(ModelLoadError, match="no such checkpoint.*nerlit.export"):
        Tagger.load(tmp_path / "missing.ckpt")
    (tmp_path / "junk.ckpt").write_text("not a checkpoint")
    with pytest.raises(ModelLoadError, match="junk.ckpt"):
        Tagger.load(tmp_path / "junk.ckpt")
    with pytest.raises(ModelLoadError, match="config.json"):
        Tagger.load(tmp_path)


def test_crf_checkpoint_decodes_with_its_learned_transitions(tmp_path_factory, tmp_path: Path):
    """Tagger on a CRF-head model decodes with the CRF's learned transitions, from a checkpoint
    and from its export alike."""
    checkpoint = torch.load(tiny_checkpoint(tmp_path_factory, head="crf"), weights_only=True)
    # 4 training steps leave the transitions near zero; strong ones make the CRF matter
    generator = torch.Generator().manual_seed(0)
    for key in ("network.crf.transitions", "network.crf.start"):
        state = checkpoint["state_dict"][key]
        state += 5 * torch.randn(state.shape, generator=generator)
    crf_ckpt = tmp_path / "crf.ckpt"
    torch.save(checkpoint, crf_ckpt)
    tagger = Tagger.load(crf_ckpt)
    assert tagger.network.crf is not None
    words = [t.split() for t in TEXTS if t.strip()]
    got = tagger.predict_tags(words)
    exported = export_huggingface(crf_ckpt, tmp_path / "crf-export")
    assert Tagger.load(exported).predict_tags(words) == got
    tagger.network.crf = None  # constrained Viterbi without the learned scores
    assert tagger.predict_tags(words) != got, "the transitions must change something"


def test_length_batches_end_where_padding_would_pass_the_fill():
    windows = [[0] * n for n in (10, 10, 9, 8, 5, 5, 5, 5, 5, 2)]
    sizes = [[len(w) for w in b] for b in length_batches(windows, 4, 0.9)]
    assert sizes == [[10, 10, 9], [8], [5, 5, 5, 5], [5], [2]]
    counted = [[len(w) for w in b] for b in length_batches(windows, 4, 0)]  # count only
    assert counted == [[10, 10, 9, 8], [5, 5, 5, 5], [5, 2]]
    assert length_batches([], 4, 0.9) == []


def test_a_cpu_call_of_mixed_lengths_is_batched_by_length(ckpt: Path):
    tagger = Tagger.load(ckpt, precision="fp32", device="cpu")
    tagger.backend = RecordingBackend(tagger.backend)
    long = " ".join(["Paris"] * 20)
    tags = tagger.predict_tags([long.split(), ["Obama"], long.split(), ["Iraq"]])
    assert [len(t) for t in tags] == [20, 1, 20, 1]
    lengths = sorted(sorted(found) for _, found in tagger.backend.calls)
    assert lengths == [[3, 3], [22, 22]]  # two batches, not padded past their own widths


class _WidthRecorder(RecordingBackend):
    """Notes each batch's padded width as well."""

    def __call__(self, input_ids, attention_mask, casing_ids):
        self.widths = [*getattr(self, "widths", []), input_ids.shape[1]]
        return super().__call__(input_ids, attention_mask, casing_ids)


def test_cpu_tagging_pads_to_a_multiple_of_8_by_default_and_tags_as_exact_padding(ckpt: Path):
    """Exact padding made every batch a new shape, and oneDNN kept what it built for each: a
    200 MB input's memory grew past 1 GB. ``auto`` pads to 8 on a CPU; the tags must not care."""
    words = [t.split() for t in TEXTS if t.strip()] + [["Paris"] * n for n in range(1, 40, 3)]
    tags, widths, multiples = {}, {}, {}
    for pad in ("auto", 1, 16):
        tagger = Tagger.load(
            ckpt, precision="fp32", device="cpu", batch_size=3, pad_to_multiple_of=pad
        )
        tagger.backend = _WidthRecorder(tagger.backend)
        tags[pad], multiples[pad] = tagger.predict_tags(words), tagger.pad_multiple
        widths[pad] = tagger.backend.widths
    assert Tagger.load(ckpt, device="cpu").pad_multiple == 8 == multiples["auto"]
    assert all(w % 8 == 0 for w in widths["auto"]) and all(w % 16 == 0 for w in widths[16])
    assert any(w % 8 for w in widths[1]), "exact padding must give widths off the multiple"
    assert len(set(widths["auto"])) < len(set(widths[1]))
    assert tags["auto"] == tags[1] == tags[16]


@pytest.mark.parametrize("bad", [0, -8, "abc", True, 2.5, None])
def test_a_bad_padding_multiple_is_one_line(ckpt: Path, bad):
    with pytest.raises(OptionError, match=r"pad_to_multiple_of=.*(1: exact padding)"):
        Tagger.load(ckpt, pad_to_multiple_of=bad)


def test_windows_padded_to_one_width_never_end_a_batch():
    windows = [[0] * n for n in (24, 18, 17, 16, 9)]
    exact = [[len(w) for w in b] for b in length_batches(windows, 8, 0.9)]
    assert exact == [[24], [18, 17], [16], [9]]
    rounded = [[len(w) for w in b] for b in length_batches(windows, 8, 0.9, multiple=8)]
    assert rounded == [[24, 18, 17], [16, 9]]  # 18 and 17 pad to 24 alone too, 9 to 16

"""Document context (FLERT): neighbours' subwords as input only, same in training and inference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from nerlit import Tagger
from nerlit.commands.evaluate import evaluate
from nerlit.commands.train import build
from nerlit.config import CONFIG_DIR
from nerlit.data.encoding import IGNORE_INDEX, SubwordEncoder
from nerlit.data.readers import read_conll_file, read_jsonl_file
from nerlit.data.types import Sentence
from nerlit.errors import CorpusFormatError
from nerlit.inference.files import predict_file
from nerlit.inference.hf_export import export_huggingface
from nerlit.inference.loading import load_model
from tests.conftest import compose_train, make_sentences

CONTEXT = 16


def write_documents(path: Path, sentences, per_document: int) -> Path:
    """CoNLL columns, a ``-DOCSTART-`` before every ``per_document`` sentences."""
    lines = []
    for i, (words, tags) in enumerate(sentences):
        if i % per_document == 0:
            lines += ["-DOCSTART- -X- O O", ""]
        lines += [f"{w} NN O {t}" for w, t in zip(words, tags)] + [""]
    path.write_text("\n".join(lines) + "\n")
    return path


def sentence(text: str, document: str | None = "doc") -> Sentence:
    words = tuple(text.split())
    return Sentence(words, ("O",) * len(words), document=document)


def pieces(tokenizer, sentences: list[Sentence]) -> list[list[int]]:
    """Each word's subword ids, tokenized independently of the encoder under test."""
    words = [w for s in sentences for w in s.words]
    return [tokenizer(w, add_special_tokens=False)["input_ids"] for w in words]


def flat(nested: list[list[int]]) -> list[int]:
    return [i for part in nested for i in part]


def strip_context(window) -> tuple[list[int], list[int], list[int]]:
    """The window without its context tokens: what it would be without context."""
    left, right = window.context_tokens
    keep = slice(1 + left, len(window) - 1 - right)
    return (
        window.input_ids[:1] + window.input_ids[keep] + window.input_ids[-1:],
        window.labels[:1] + window.labels[keep] + window.labels[-1:],
        window.word_index[:1] + window.word_index[keep] + window.word_index[-1:],
    )


# --- readers ------------------------------------------------------------------------------------


def test_conll_reader_starts_a_document_at_each_docstart(tmp_path: Path):
    path = tmp_path / "d.txt"
    path.write_text(
        "Before NN O O\n\n"  # line 1: before any marker
        "-DOCSTART- -X- O O\n\n"  # line 3
        "Obama NN O B-per\nspoke NN O O\n\n"
        "Paris NN O B-geo\n"
        "-DOCSTART- -X- O O\n"  # line 9, right after a word line: still ends the sentence
        "Reuters NN O B-org\n\n"
    )
    read = read_conll_file(path)
    assert [s.words for s in read] == [("Before",), ("Obama", "spoke"), ("Paris",), ("Reuters",)]
    assert [s.document for s in read] == [None, "d.txt:3", "d.txt:3", "d.txt:9"]

    plain = tmp_path / "plain.txt"
    plain.write_text("Obama NN O B-per\n\nParis NN O B-geo\n")
    assert [s.document for s in read_conll_file(plain)] == [None, None]


def test_jsonl_document_key_is_optional_and_checked(tmp_path: Path):
    path = tmp_path / "d.jsonl"
    records = [
        {"tokens": ["Obama"], "tags": ["B-per"], "document": "a"},
        {"text": "Paris", "entities": [], "document": 7},
        {"tokens": ["Reuters"], "tags": ["B-org"]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert [s.document for s in read_jsonl_file(path)] == ["a", "7", None]
    path.write_text(json.dumps({"tokens": ["x"], "tags": ["O"], "document": [1]}) + "\n")
    with pytest.raises(CorpusFormatError, match="'document' must be"):
        read_jsonl_file(path)


# --- encoding -----------------------------------------------------------------------------------


def test_context_tokens_are_the_neighbours_subwords_in_order(cased_tokenizer):
    a, b, c = (
        sentence("Angela Merkel visited Berlin ."),
        sentence("Obama left Paris on Friday ."),
        sentence("Reuters reported it ."),
    )
    windows = SubwordEncoder(cased_tokenizer, 128, context=64).encode([a, b, c], {"O": 0})
    assert len(windows) == 3
    cls, sep = cased_tokenizer.cls_token_id, cased_tokenizer.sep_token_id
    pa, pb, pc = (flat(pieces(cased_tokenizer, [s])) for s in (a, b, c))
    assert windows[1].input_ids == [cls, *pa, *pb, *pc, sep]
    assert windows[1].context_tokens == (len(pa), len(pc))
    assert windows[0].input_ids == [cls, *pa, *pb, *pc, sep]
    assert windows[0].context_tokens == (0, len(pb) + len(pc))
    assert windows[2].context_tokens == (len(pa) + len(pb), 0)
    for window in windows:
        left, right = window.context_tokens
        context = list(range(1, 1 + left)) + list(range(len(window) - 1 - right, len(window) - 1))
        assert all(window.labels[t] == IGNORE_INDEX for t in context)
        assert all(window.word_index[t] == -1 for t in context)
    # the middle sentence owns exactly its own words, at its own first subwords
    owned = [(t, i) for t, i in enumerate(windows[1].word_index) if i >= 0]
    assert [i for _, i in owned] == list(range(len(b)))
    assert owned[0][0] == 1 + len(pa)


def test_no_context_crosses_a_document_boundary(cased_tokenizer):
    sentences = [
        sentence("Obama spoke .", "x"),
        sentence("Paris is big .", "y"),
        sentence("Reuters said so .", "y"),
        sentence("Maria left .", "x"),  # the same id as the first, but not adjacent to it
        sentence("NATO met .", None),
        sentence("Iraq voted .", None),  # None is no document: no context between these two
    ]
    windows = SubwordEncoder(cased_tokenizer, 128, context=64).encode(sentences, {"O": 0})
    assert [w.context_tokens for w in windows] == [
        (0, 0),
        (0, len(flat(pieces(cased_tokenizer, [sentences[2]])))),
        (len(flat(pieces(cased_tokenizer, [sentences[1]]))), 0),
        (0, 0),
        (0, 0),
        (0, 0),
    ]


@pytest.mark.parametrize("context", [1, 5, 13])
def test_context_never_exceeds_n_per_side_and_is_made_of_whole_nearest_words(
    cased_tokenizer, context: int
):
    sentences = [sentence(" ".join(w)) for w, _ in make_sentences(12, seed=3)]
    windows = SubwordEncoder(cased_tokenizer, 512, context=context).encode(sentences, {"O": 0})
    word_pieces = pieces(cased_tokenizer, sentences)
    starts = [sum(len(s) for s in sentences[:i]) for i in range(len(sentences) + 1)]
    assert any(any(w.context_tokens) for w in windows)
    for index, window in enumerate(windows):
        left, right = window.context_tokens
        assert left <= context and right <= context
        # left: the whole words just before the sentence, as many as fit in `context`
        before = word_pieces[: starts[index]]
        taken = [k for k in range(len(before) + 1) if len(flat(before[len(before) - k :])) == left]
        assert taken, "left context must be whole words"
        k = taken[-1]
        assert window.input_ids[1 : 1 + left] == flat(before[len(before) - k :])
        assert k == len(before) or left + len(before[-k - 1]) > context
        # right: the whole words just after it, as many as fit
        after = word_pieces[starts[index + 1] :]
        taken = [k for k in range(len(after) + 1) if len(flat(after[:k])) == right]
        assert taken, "right context must be whole words"
        k = taken[-1]
        assert window.input_ids[len(window) - 1 - right : -1] == flat(after[:k])
        assert k == len(after) or right + len(after[k]) > context


def test_context_is_trimmed_to_the_budget_never_the_sentence(cased_tokenizer):
    sentences = [sentence(" ".join(w)) for w, _ in make_sentences(6, seed=5)]
    middle = len(flat(pieces(cased_tokenizer, [sentences[2]])))
    max_length = middle + 2 + 7  # room for 7 context subwords in all
    encoder = SubwordEncoder(cased_tokenizer, max_length, context=64)
    windows = encoder.encode(sentences, {"O": 0})
    window = next(w for w in windows if w.sentence_index == 2)
    assert len(window) <= max_length
    assert 0 < sum(window.context_tokens) <= 7
    alone = SubwordEncoder(cased_tokenizer, max_length).encode(sentences, {"O": 0})[2]
    assert strip_context(window)[0] == alone.input_ids
    assert all(len(w) <= max_length for w in windows)


def test_context_zero_leaves_windows_as_they_were(cased_tokenizer):
    sentences = [sentence("Obama spoke in Paris ."), sentence("Reuters said so .")]
    cls, sep = cased_tokenizer.cls_token_id, cased_tokenizer.sep_token_id
    for encoder, given in (
        (SubwordEncoder(cased_tokenizer, 128), sentences),
        (
            SubwordEncoder(cased_tokenizer, 128, context=64),
            [sentence(" ".join(s.words), None) for s in sentences],
        ),
    ):
        windows = encoder.encode(given, {"O": 0})
        for window, s in zip(windows, given):
            assert window.input_ids == [cls, *flat(pieces(cased_tokenizer, [s])), sep]
            assert window.context_tokens == (0, 0)
            assert [i for i in window.word_index if i >= 0] == list(range(len(s)))


@pytest.mark.parametrize("label_all_subwords", [False, True])
def test_context_does_not_change_owned_words(cased_tokenizer, label_all_subwords: bool):
    raw = make_sentences(8, seed=7)
    labels = sorted({t for _, tags in raw for t in tags})
    label2id = {t: i for i, t in enumerate(labels)}
    sentences = [Sentence(tuple(w), tuple(t), document="doc") for w, t in raw]
    plain = SubwordEncoder(cased_tokenizer, 128, label_all_subwords=label_all_subwords)
    framed = SubwordEncoder(cased_tokenizer, 128, label_all_subwords=label_all_subwords, context=9)
    with_context = framed.encode(sentences, label2id)
    assert all(any(w.context_tokens) for w in with_context)
    for window, alone in zip(with_context, plain.encode(sentences, label2id)):
        assert strip_context(window) == (alone.input_ids, alone.labels, alone.word_index)


def test_a_long_sentence_still_windows_without_context(cased_tokenizer):
    long_words = [w for words, _ in make_sentences(8, seed=11) for w in words]
    sentences = [
        sentence("Obama spoke ."),
        sentence(" ".join(long_words)),
        sentence("Paris voted ."),
    ]
    encoder = SubwordEncoder(cased_tokenizer, 32, stride=8, context=6)
    windows = encoder.encode(sentences, {"O": 0})
    alone = SubwordEncoder(cased_tokenizer, 32, stride=8).encode(sentences, {"O": 0})
    long_windows = [w for w in windows if w.sentence_index == 1]
    assert len(long_windows) > 2
    assert long_windows == [w for w in alone if w.sentence_index == 1]
    # its neighbours still take context from it: its first and last words
    long_pieces = pieces(cased_tokenizer, [sentences[1]])
    first, last = windows[0], windows[-1]
    assert first.context_tokens[1] > 0 and last.context_tokens[0] > 0
    right = first.input_ids[len(first) - 1 - first.context_tokens[1] : -1]
    assert right == flat(long_pieces)[: len(right)]
    left = last.input_ids[1 : 1 + last.context_tokens[0]]
    assert left == flat(long_pieces)[-len(left) :]


# --- training, inference, evaluate and predict agree -------------------------------------------


@pytest.fixture(scope="module")
def context_run(tmp_path_factory):
    """A seeded 4-step tiny run on documents with data.context > 0, tested in fp32."""
    directory = tmp_path_factory.mktemp("context")
    files = {
        split: write_documents(directory / f"{split}.txt", make_sentences(n, seed), 5)
        for split, n, seed in (("train", 40, 0), ("val", 10, 1), ("test", 15, 2))
    }
    overrides = [
        "model=tiny",
        "debug=fast",
        "data=conll",
        *(f"data.{split}_file={path}" for split, path in files.items()),
        f"data.context={CONTEXT}",
        "data.unknown_labels=o",
        "data.batch_size=8",
        "data.eval_batch_size=16",
        "trainer.accelerator=cpu",
        "trainer.precision=32-true",
        "trainer.enable_progress_bar=false",
        "logger=none",
        "callbacks=none",
    ]
    module, datamodule, trainer = build(compose_train(overrides, directory / "run"))
    trainer.fit(module, datamodule=datamodule)
    trainer.test(module, datamodule=datamodule)
    ckpt = directory / "context.ckpt"
    trainer.save_checkpoint(ckpt)
    return {"module": module, "datamodule": datamodule, "ckpt": ckpt, "files": files}


def module_word_logits(module, datamodule) -> list[torch.Tensor]:
    """What NerModule's test step keeps per word: the logits at each owned first subword."""
    sentences = datamodule.sentences("test")
    out = [torch.full((len(s), len(module.labels)), float("nan")) for s in sentences]
    module.eval()
    with torch.no_grad():
        for batch in datamodule.test_dataloader():
            logits = module(batch["input_ids"], batch["attention_mask"])
            for row, index in enumerate(batch["sentence_index"].tolist()):
                owned = batch["word_index"][row] >= 0
                out[index][batch["word_index"][row][owned]] = logits[row][owned].float()
    return out


def test_tagger_with_documents_reproduces_the_module_test_predictions(context_run):
    module, datamodule = context_run["module"], context_run["datamodule"]
    sentences = datamodule.sentences("test")
    documents = [s.document for s in sentences]
    assert len(set(documents)) == 3 and None not in documents
    assert datamodule.with_context["test"] == len(sentences)
    assert module.hparams.context == CONTEXT

    tagger = Tagger.load(context_run["ckpt"], precision="fp32", device="cpu")
    assert tagger.context == CONTEXT
    words = [s.words for s in sentences]
    expected = module_word_logits(module, datamodule)
    with_documents = tagger.word_logits(words, documents)
    for got, want in zip(with_documents, expected):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    alone = tagger.word_logits(words)
    assert max(float((a - w).abs().max()) for a, w in zip(alone, expected)) > 1e-3, (
        "without documents the inputs differ, so the scores must too"
    )
    assert tagger.predict_tags(words, documents) == module.test_predictions
    with pytest.raises(ValueError, match="one per sentence"):
        tagger.predict_tags(words, documents[:-1])


def test_checkpoint_and_export_carry_the_context_size(context_run, tmp_path: Path):
    assert load_model(context_run["ckpt"]).context == CONTEXT
    exported = export_huggingface(context_run["ckpt"], tmp_path / "export")
    assert load_model(exported).context == CONTEXT


def test_evaluate_passes_documents_and_reproduces_the_test_f1(
    context_run, tmp_path: Path, monkeypatch
):
    seen = []
    original = Tagger.predict_tags

    def spy(self, sentences, documents=None):
        seen.append(documents)
        return original(self, sentences, documents)

    monkeypatch.setattr(Tagger, "predict_tags", spy)
    files = context_run["files"]
    overrides = [
        f"ckpt_path={context_run['ckpt']}",
        "data=conll",
        *(f"data.{split}_file={path}" for split, path in files.items()),
        "precision=fp32",
        "device=cpu",
    ]
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("evaluate.yaml", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "eval")
    scores = evaluate(cfg)
    assert seen == [[s.document for s in context_run["datamodule"].sentences("test")]]
    assert scores["micro"] == context_run["module"].test_scores["micro"]


def test_predict_conll_passes_documents_and_keeps_them_whole(context_run, tmp_path: Path):
    calls = []
    tagger = Tagger.load(context_run["ckpt"], precision="fp32", device="cpu")
    original = tagger.predict_tags

    def spy(sentences, documents=None):
        calls.append((sentences, documents))
        return original(sentences, documents)

    tagger.predict_tags = spy
    source = context_run["files"]["test"]
    out = tmp_path / "tagged.conll"
    # a document is 12 blocks (marker, blank, 5 x sentence + blank): chunks end at documents
    predict_file(tagger, source, out, format="conll", chunk_size=8, progress=False)
    assert [len(s) for s, _ in calls] == [5, 5, 5]
    for _, documents in calls:
        assert len(set(documents)) == 1 and documents[0] is not None
    assert len({documents[0] for _, documents in calls}) == 3

    # the tag column is what predict_tags gives the whole file with its documents
    sentences = read_conll_file(source)
    expected = original([s.words for s in sentences], [s.document for s in sentences])
    lines = out.read_text().splitlines()
    assert sum("-DOCSTART-" in line for line in lines) == 3
    tags = [line.split()[-1] for line in lines if line.strip() and "-DOCSTART-" not in line]
    assert tags == [t for row in expected for t in row]

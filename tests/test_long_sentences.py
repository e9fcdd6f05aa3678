"""A 2,000-word sentence: windowed, every word predicted once, every gold entity scored."""

from __future__ import annotations

import json
import random
from pathlib import Path

from nerlit.commands.train import build
from tests.conftest import compose_train, make_sentences


def test_two_thousand_word_sentence_is_fully_predicted_and_scored(tmp_path: Path):
    rng = random.Random(0)
    long_words, long_tags = [], []
    while len(long_words) < 2000:
        words, tags = make_sentences(1, seed=rng.randrange(10**6))[0]
        long_words += words
        long_tags += tags
    long_words, long_tags = long_words[:2000], long_tags[:2000]
    if long_tags[-1].startswith("I-") and long_tags[-2] == "O":
        long_tags[-1] = "O"
    short = make_sentences(40)
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps({"tokens": w, "tags": t}) for w, t in short))
    test = tmp_path / "test.jsonl"
    test.write_text(
        json.dumps({"tokens": long_words, "tags": long_tags})
        + "\n"
        + json.dumps({"tokens": short[0][0], "tags": short[0][1]})
        + "\n"
    )
    cfg = compose_train(
        [
            "model=tiny",
            "data=jsonl",
            f"data.train_file={train}",
            f"data.val_file={train}",
            f"data.test_file={test}",
            "data.max_length=64",
            "data.stride=16",
            "trainer.accelerator=cpu",
            "trainer.max_steps=2",
            "trainer.enable_progress_bar=false",
            "logger=none",
            "callbacks=none",
        ],
        tmp_path / "run",
    )
    module, datamodule, trainer = build(cfg)
    assert datamodule.windowed["test"] == 1
    assert len([w for w in datamodule.windows["test"] if w.sentence_index == 0]) > 30
    trainer.test(module, datamodule=datamodule)
    predicted = module.test_predictions
    assert [len(p) for p in predicted] == [2000, len(short[0][0])]
    gold_entities = sum(t.startswith("B-") for t in long_tags + short[0][1])
    assert module.test_scores["micro"]["support"] == gold_entities

"""Tagger vs the Hugging Face token-classification pipeline on GMB test sentences, one process.

    python bench/inference.py --model DIR [--sentences 2000]     (make bench-inference)

DIR is a folder from ``python -m nerlit.export`` (a MiniLM fine-tuned on GMB); without --model the
script first fine-tunes MiniLM for --steps steps and exports it, so predictions mean something.
Both taggers get the same raw strings (each sentence's words joined by spaces). The pipeline runs
as users would run it (fp32, ``aggregation_strategy="first"``, ``batch_size=32``); ``Tagger`` in
the headline runs with ``--precision`` (bf16 by default; fp32, its default, is timed too). The
floor is a bare batched forward over the same length-sorted windows ``Tagger`` builds, in the same
precision, timed alone. Agreement counts sentences whose (start, end, label) entity sets are
identical; each disagreement is printed with its likely cause, and both taggers are scored
against GMB's gold entities, so a disagreement shows who was right. The last line is

    speedup_vs_pipeline=X.XX agreement=Y.YYYY overhead_vs_bare=Z.ZZ
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from transformers import pipeline  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from nerlit.data.corpus import load_corpus  # noqa: E402
from nerlit.data.encoding import SubwordEncoder, collate_windows  # noqa: E402
from nerlit.data.types import Sentence  # noqa: E402
from nerlit.data.words import join_words, split_words  # noqa: E402
from nerlit.inference import Tagger  # noqa: E402
from nerlit.inference.loading import export_huggingface  # noqa: E402
from nerlit.inference.spans import entities_from_tags  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("NERLIT_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
GMB = DATA_DIR / "gmb" / "ner_dataset.csv.gz"


def fine_tune(steps: int, workdir: Path) -> Path:
    """A few hundred MiniLM steps on GMB, then export: predictions then mean something."""
    run = workdir / "run"
    command = [
        sys.executable,
        "-m",
        "nerlit.train",
        "experiment=gmb_minilm",
        # the pipeline cannot compute casing features: compare on a network both can run
        "model.case_features=false",
        f"trainer.max_steps={steps}",
        "trainer.max_epochs=1",
        f"trainer.val_check_interval={steps}",  # one validation at the end: it saves last.ckpt
        "++trainer.limit_val_batches=10",
        "++trainer.num_sanity_val_steps=0",
        "test=false",
        "logger=none",
        f"hydra.run.dir={run}",
    ]
    print("fine-tuning:", " ".join(command[2:]), flush=True)
    subprocess.run(command, cwd=REPO_ROOT, check=True)
    checkpoint = sorted((run / "checkpoints").glob("last.ckpt"))[-1]
    exported = export_huggingface(checkpoint, workdir / "export")
    print(f"fine-tuned model exported to {exported} (reuse it with --model)", flush=True)
    return exported


def gmb_test_sentences(path: Path, count: int) -> list[Sentence]:
    """The first ``count`` sentences of nerlit's seeded GMB test split (the training split)."""
    corpus, _ = load_corpus(path, format="gmb", encoding="cp1252", scheme="iob2")
    return corpus.test[:count]


def gold_entities(sentence: Sentence) -> frozenset:
    """Gold (start, end, label) over the words joined by spaces, the text both taggers see."""
    _, offsets = join_words(sentence.words)
    found = entities_from_tags(sentence.tags, [1.0] * len(sentence), offsets, "")
    return frozenset((e.start, e.end, e.label) for e in found)


def micro_f1(predicted: list[frozenset], gold: list[frozenset]) -> float:
    hits = sum(len(p & g) for p, g in zip(predicted, gold))
    n_pred, n_gold = sum(map(len, predicted)), sum(map(len, gold))
    return 2 * hits / (n_pred + n_gold) if n_pred + n_gold else 0.0


def same_words(tagger: Tagger, text: str) -> bool:
    """Whether the pipeline sees our words: its tokenizer's pre-tokens are exactly them."""
    backend = tagger.tokenizer.backend_tokenizer
    normalize = backend.normalizer.normalize_str if backend.normalizer else str
    ours = [normalize(w) for w, _, _ in split_words(text)]
    theirs = [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(normalize(text))]
    return ours == theirs


def entity_set(items) -> frozenset:
    return frozenset((e["start"], e["end"], e["label"]) for e in items)


def pipeline_entities(result) -> list[dict]:
    return [
        {"start": e["start"], "end": e["end"], "label": e["entity_group"], "score": e["score"]}
        for e in result
    ]


def bare_forward_seconds(tagger: Tagger, texts: list[str]) -> float:
    """Only the model calls, over the length-sorted windows Tagger builds: the floor."""
    encoder = SubwordEncoder(tagger.tokenizer, tagger.max_length, tagger.stride)
    sentences = []
    for text in texts:
        words = tuple(w for w, _, _ in split_words(text))
        sentences.append(Sentence(words, ("O",) * len(words)))
    windows = sorted(encoder.encode(sentences, {"O": 0}), key=len, reverse=True)
    batches = [
        collate_windows(windows[b : b + tagger.batch_size], tagger.pad_id)
        for b in range(0, len(windows), tagger.batch_size)
    ]
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=tagger.precision == "bf16")
    start = time.perf_counter()
    with torch.inference_mode(), autocast:
        for batch in batches:
            tagger.network(batch["input_ids"], batch["attention_mask"])
    return time.perf_counter() - start


def explain(text: str, theirs: frozenset, argmax_agrees: bool, fp32_argmax_agrees: bool) -> str:
    """The likely cause of one disagreement."""
    words = split_words(text)
    boundaries = {p for start, end, _ in theirs for p in (start, end)}
    cut = [w for w, start, end in words if any(start < p < end for p in boundaries)]
    if cut:
        return f"pipeline split a word at its own pre-tokens ({', '.join(cut)})"
    if argmax_agrees:
        return "valid-sequence (constrained Viterbi) decoding differs from per-word argmax"
    if fp32_argmax_agrees:
        return "bf16 rounding flips a near-tie (fp32 argmax agrees with the pipeline)"
    return "other (same words, different labels: inspect)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="an exported nerlit folder (nerlit.export)")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--data", type=Path, default=GMB, help="the GMB csv(.gz)")
    parser.add_argument("--batch-size", type=int, default=32, help="Tagger windows per batch")
    parser.add_argument("--decode", default="constrained", choices=("constrained", "argmax"))
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps without --model")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--show", type=int, default=20, help="disagreements to print")
    parser.add_argument(
        "--pretokenized",
        action="store_true",
        help="give both systems GMB's own words (the pipeline with is_split_into_words=True), so "
        "that only the models' decisions can differ, not how raw text is cut into words",
    )
    args = parser.parse_args()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = args.model or fine_tune(args.steps, Path(tempfile.mkdtemp(prefix="nerlit-bench-")))

    sentences = gmb_test_sentences(args.data, args.sentences)
    texts = [" ".join(s.words) for s in sentences]
    gold = [gold_entities(s) for s in sentences]
    n = len(texts)
    tagger = Tagger.load(
        model_dir, args.decode, args.batch_size, device="cpu", precision=args.precision
    )
    if tagger.network.casing is not None:
        sys.exit(
            f"{model_dir} was trained with model.case_features, which transformers.pipeline "
            f"ignores, so the two would run different networks. Benchmark a model trained with "
            f"model.case_features=false."
        )
    other = "fp32" if args.precision == "bf16" else "bf16"
    tagger_other = Tagger.load(
        model_dir, args.decode, args.batch_size, device="cpu", precision=other
    )
    hf_pipeline = pipeline(
        "token-classification", model=str(model_dir), aggregation_strategy="first", device="cpu"
    )
    inputs = [list(s.words) for s in sentences] if args.pretokenized else texts

    def hf(batch, batch_size):
        return hf_pipeline(batch, batch_size=batch_size, is_split_into_words=args.pretokenized)

    words = sum(len(split_words(t)) for t in texts)
    print(
        f"model {model_dir}; {n} GMB test sentences, {words} words; torch threads "
        f"{torch.get_num_threads()}; Tagger batch {args.batch_size}, decode {args.decode}, "
        f"precision {args.precision}"
    )
    # warm-up: first calls allocate and pick kernels
    for run in (tagger.predict, tagger_other.predict, lambda t: hf(t, batch_size=32)):
        run(inputs[:64])
    bare_forward_seconds(tagger, texts[:64])

    start = time.perf_counter()
    theirs = hf(inputs, batch_size=32)
    pipeline_s = time.perf_counter() - start
    start = time.perf_counter()
    ours = tagger.predict(inputs)
    tagger_s = time.perf_counter() - start
    start = time.perf_counter()
    ours_other = tagger_other.predict(inputs)
    other_s = time.perf_counter() - start
    bare_s = bare_forward_seconds(tagger, texts)

    tagger.decode = tagger_other.decode = "argmax"
    ours_argmax, other_argmax = tagger.predict(inputs), tagger_other.predict(inputs)
    tagger.decode = tagger_other.decode = args.decode

    ours_sets = [entity_set(e.to_dict() for e in found) for found in ours]
    other_sets = [entity_set(e.to_dict() for e in found) for found in ours_other]
    argmax_sets = [entity_set(e.to_dict() for e in found) for found in ours_argmax]
    other_argmax_sets = [entity_set(e.to_dict() for e in found) for found in other_argmax]
    fp32_argmax = other_argmax_sets if other == "fp32" else argmax_sets
    their_sets = [entity_set(pipeline_entities(r)) for r in theirs]
    disagree = [i for i in range(n) if ours_sets[i] != their_sets[i]]
    agreement = 1 - len(disagree) / n
    shared = [i for i in range(n) if args.pretokenized or same_words(tagger, texts[i])]

    def agree(sets: list[frozenset], rows: list[int]) -> float:
        return sum(sets[i] == their_sets[i] for i in rows) / max(len(rows), 1)

    causes: dict[str, int] = {}
    for shown, i in enumerate(disagree):
        cause = explain(
            texts[i],
            their_sets[i],
            argmax_sets[i] == their_sets[i],
            fp32_argmax[i] == their_sets[i],
        )
        causes[cause.split(" (")[0]] = causes.get(cause.split(" (")[0], 0) + 1
        if shown < args.show:
            print(f"\n[{i}] {texts[i]}")
            print(f"  gold    : {sorted((texts[i][s:e], lab) for s, e, lab in gold[i])}")
            print(f"  nerlit  : {sorted((texts[i][s:e], lab) for s, e, lab in ours_sets[i])}")
            print(f"  pipeline: {sorted((texts[i][s:e], lab) for s, e, lab in their_sets[i])}")
            print(f"  cause   : {cause}")
    print()
    print(f"pipeline (fp32)      : {n / pipeline_s:7.1f} sentences/s ({pipeline_s:.2f} s)")
    print(f"Tagger ({args.precision})        : {n / tagger_s:7.1f} sentences/s ({tagger_s:.2f} s)")
    print(
        f"Tagger ({other})        : {n / other_s:7.1f} sentences/s ({other_s:.2f} s), "
        f"{pipeline_s / other_s:.2f}x the pipeline"
    )
    print(f"bare forward ({args.precision}) : {n / bare_s:7.1f} sentences/s ({bare_s:.2f} s)")
    print(f"disagreements: {len(disagree)} of {n}; by cause: {causes}")
    print(
        f"agreement: {args.decode}/{args.precision} {agreement:.4f}, argmax/{args.precision} "
        f"{agree(argmax_sets, list(range(n))):.4f}, {args.decode}/{other} "
        f"{agree(other_sets, list(range(n))):.4f}; on the {len(shared)} sentences whose "
        f"words are the tokenizer's pre-tokens: argmax/{args.precision} "
        f"{agree(argmax_sets, shared):.4f}, argmax/fp32 {agree(fp32_argmax, shared):.4f}"
    )
    print(
        f"entity F1 against GMB gold: nerlit {micro_f1(ours_sets, gold):.4f} "
        f"(argmax {micro_f1(argmax_sets, gold):.4f}), pipeline {micro_f1(their_sets, gold):.4f}"
    )
    print(
        f"speedup_vs_pipeline={pipeline_s / tagger_s:.2f} agreement={agreement:.4f} "
        f"overhead_vs_bare={tagger_s / bare_s:.2f}"
    )


if __name__ == "__main__":
    main()

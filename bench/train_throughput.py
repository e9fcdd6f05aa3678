"""Training throughput, side by side: nerlit vs the Hugging Face Trainer vs a bare PyTorch loop.

    python bench/train_throughput.py [--sentences 3000] [--steps 60] [--model DIR]

All three train the same model (MiniLM by default) on the same GMB training sentences for the
same number of optimizer steps, batch size 32, bf16 autocast on CPU:

(a) nerlit: ``NerModule`` + ``NerDataModule`` under Lightning's Trainer, as ``make train`` runs;
(b) HF: ``Trainer`` + ``AutoModelForTokenClassification`` + ``DataCollatorForTokenClassification``
    with run_ner.py-style preprocessing (first subword labelled) and HF defaults otherwise;
(c) bare: a plain PyTorch loop over nerlit's own batches and model, the floor for (a).

Each variant runs in a fresh subprocess (so peak resident memory is its own) and times the
steps after ``--warmup`` steps. Throughput is words/s (what a user's corpus is measured in) and
subword tokens/s (padding excluded). The last line is exactly
``speedup_vs_hf_trainer=X.XX overhead_vs_bare=Y.YY``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_MODEL = Path(os.environ.get("NERLIT_MODELS_DIR", SHARED / "models")) / "all-MiniLM-L6-v2"
GMB = Path(os.environ.get("NERLIT_DATA_DIR", SHARED / "data")) / "gmb" / "ner_dataset.csv.gz"


def gmb_sentences(n: int):
    """The first ``n`` sentences of nerlit's fixed GMB train split (seed 42)."""
    from nerlit.data.corpus import load_corpus

    corpus, _ = load_corpus(GMB, format="gmb", encoding="cp1252", scheme="iob2")
    return corpus.train[:n], corpus.labels()


class StepClock:
    """Times optimizer steps after a warmup and sums the words/tokens of the timed batches."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.step, self.start, self.end = warmup, 0, None, None
        self.words = self.tokens = 0

    def begin(self) -> None:
        if self.step == self.warmup:
            self.start = time.perf_counter()

    def finish(self, words: int, tokens: int) -> None:
        if self.step >= self.warmup:
            self.words += words
            self.tokens += tokens
            self.end = time.perf_counter()
        self.step += 1

    def result(self) -> dict:
        seconds = self.end - self.start
        return {
            "seconds": seconds,
            "steps": self.step - self.warmup,
            "words": self.words,
            "tokens": self.tokens,
            "words_per_s": self.words / seconds,
            "tokens_per_s": self.tokens / seconds,
        }


def _nerlit_parts(args, tmp: Path):
    """nerlit's DataModule and module for the benchmark sentences, built as train.py builds them."""
    from nerlit.data.datamodule import NerDataModule
    from nerlit.evaluation.metrics import entity_scores
    from nerlit.models.module import NerModule
    from nerlit.models.optim import adamw, linear_warmup
    from nerlit.models.pretrained import load_tokenizer

    sentences, _ = gmb_sentences(args.sentences)
    path = tmp / "train.jsonl"
    path.write_text("\n".join(json.dumps({"tokens": s.words, "tags": s.tags}) for s in sentences))
    tokenizer = load_tokenizer(args.model)
    datamodule = NerDataModule(
        str(path),
        str(path),
        str(path),
        format="jsonl",
        scheme="iob2",
        tokenizer=tokenizer,
        batch_size=args.batch_size,
        seed=0,
        length_grouping=not args.no_length_grouping,
    )
    datamodule.setup()
    module = NerModule(
        datamodule.labels,
        pretrained=args.model,
        scorer=entity_scores,
        optimizer=lambda params: adamw(params, lr=5e-5, fused=False if args.no_fused else None),
        scheduler=lambda opt, total_steps: linear_warmup(opt, total_steps, 0.1),
    )
    return datamodule, module


def run_nerlit(args, tmp: Path) -> dict:
    import lightning as L

    datamodule, module = _nerlit_parts(args, tmp)
    clock = StepClock(args.warmup)

    class Clock(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            clock.begin()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            clock.finish(batch["num_words"], batch["num_tokens"])

    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        precision=args.precision,
        max_steps=args.steps,
        gradient_clip_val=1.0,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Clock()],
        default_root_dir=str(tmp),
    )
    trainer.fit(module, train_dataloaders=datamodule.train_dataloader())
    return clock.result()


def run_bare(args, tmp: Path) -> dict:
    from nerlit.models.optim import adamw, linear_warmup, parameter_groups

    datamodule, module = _nerlit_parts(args, tmp)
    module.train()
    optimizer = adamw(parameter_groups(module), lr=5e-5)
    scheduler = linear_warmup(optimizer, args.steps, 0.1)
    clock = StepClock(args.warmup)
    loader = datamodule.train_dataloader()

    def epochs():
        for epoch in itertools.count():
            loader.batch_sampler.set_epoch(epoch)
            yield from loader

    for _, batch in zip(range(args.steps), epochs()):
        clock.begin()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = module(batch["input_ids"], batch["attention_mask"])
        loss = module._loss(logits, batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        clock.finish(batch["num_words"], batch["num_tokens"])
    return clock.result()


def run_hf(args, tmp: Path) -> dict:
    """run_ner.py's recipe: tokenize split words, label first subwords, HF Trainer defaults."""
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    sentences, labels = gmb_sentences(args.sentences)
    label2id = {label: i for i, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    features = []
    for sentence in sentences:
        encoded = tokenizer(list(sentence.words), is_split_into_words=True, truncation=True)
        previous, aligned = None, []
        for word in encoded.word_ids():
            aligned.append(
                -100 if word is None or word == previous else label2id[sentence.tags[word]]
            )
            previous = word
        features.append({**encoded, "labels": aligned})
    model = AutoModelForTokenClassification.from_pretrained(
        args.model, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id
    )
    collate = DataCollatorForTokenClassification(tokenizer)
    clock = StepClock(args.warmup)
    counts: list[tuple[int, int]] = []

    def counting_collator(rows):
        batch = collate(rows)
        counts.append((int((batch["labels"] != -100).sum()), int(batch["attention_mask"].sum())))
        return batch

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            clock.begin()

        def on_step_end(self, *a, **k):
            clock.finish(*counts[clock.step])

    training_args = TrainingArguments(
        output_dir=str(tmp / "hf"),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=5e-5,
        warmup_steps=round(0.1 * args.steps),
        bf16=True,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        seed=0,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=features,
        data_collator=counting_collator,
        callbacks=[Clock()],
    )
    trainer.train()
    return clock.result()


def matmul_peak(size: int = 2048, repeats: int = 10, trials: int = 3) -> float:
    """The machine's practical bf16 peak: FLOP/s of a large bf16 matmul on all threads.

    The best of ``trials`` timings: one timing alone once read half the usual figure when
    something else briefly held a core, which made the efficiency ratio look twice as good.
    """
    a = torch.randn(size, size, dtype=torch.bfloat16)
    b = torch.randn(size, size, dtype=torch.bfloat16)
    a @ b
    best = 0.0
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - start))
    return best


def training_flops_per_token(model_dir: str, mean_tokens: float) -> float:
    """6 x non-embedding parameters, plus attention scores/values (12 x layers x d x sequence)."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model_dir)
    d, layers, inner = c.hidden_size, c.num_hidden_layers, c.intermediate_size
    params = layers * (4 * d * d + 2 * d * inner)
    return 6 * params + 12 * layers * d * mean_tokens


VARIANTS = {"nerlit": run_nerlit, "hf": run_hf, "bare": run_bare}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--variants", default="nerlit,hf,bare")
    # ablation of nerlit's speed work: each switch turns one item off (the nerlit variant only)
    parser.add_argument("--no-length-grouping", action="store_true")
    parser.add_argument("--no-fused", action="store_true")
    parser.add_argument("--precision", default="bf16-mixed", help="nerlit variant: e.g. 32-true")
    parser.add_argument("--run", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)

    if args.run:  # child process: one variant, one JSON line
        with tempfile.TemporaryDirectory() as tmp:
            result = VARIANTS[args.run](args, Path(tmp))
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps(result))
        return

    peak = matmul_peak()
    results = {}
    for name in args.variants.split(","):
        command = [sys.executable, __file__, "--run", name, *sys.argv[1:]]
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"variant {name} failed:\n{done.stderr[-3000:]}")
        results[name] = json.loads(line[len("RESULT ") :])
        r = results[name]
        print(
            f"{name:>7}: {r['words_per_s']:8.1f} words/s {r['tokens_per_s']:8.1f} tokens/s "
            f"over {r['steps']} steps ({r['seconds']:.1f} s); peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    print(f"bf16 matmul peak: {peak / 1e9:.1f} GFLOP/s")
    if "nerlit" in results:
        r = results["nerlit"]
        per_token = training_flops_per_token(
            args.model, r["tokens"] / (r["steps"] * args.batch_size)
        )
        achieved = per_token * r["tokens_per_s"]
        print(
            f"nerlit achieved {achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.1%} of the bf16 peak"
        )
    if {"nerlit", "hf", "bare"} <= set(results):
        speedup = results["nerlit"]["words_per_s"] / results["hf"]["words_per_s"]
        overhead = results["bare"]["words_per_s"] / results["nerlit"]["words_per_s"]
        print(f"speedup_vs_hf_trainer={speedup:.2f} overhead_vs_bare={overhead:.2f}")


if __name__ == "__main__":
    main()

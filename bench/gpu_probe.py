"""What one training step costs on a GPU, and why: attention kernels, launches, host syncs.

    python bench/gpu_probe.py [--json PATH] [--model-dir DIR] [--batch 128]

Three measurements of nerlit's own network (``NerNetwork``, random init, bf16 autocast, fused
AdamW), each printed as a table:

1. **Attention kernels on new and on seen lengths.** For each ``model.attention`` choice, the
   median ms of a training step on a length the process has run before (seen) and on lengths
   it has not (new), with a padding mask as every length-grouped batch has. cuDNN's attention
   builds a plan per sequence length; that is what ``auto`` avoids and what
   ``data.pad_to_multiple_of`` bounds.
2. **Launches and host time per step** (``torch.profiler``): kernel launches, GPU busy ms
   (the kernels' summed durations) and wall ms per step, for BERT-base and MiniLM shapes.
   A step whose wall time is far above its GPU time is launch-bound.
3. **Host syncs** (``torch.cuda.set_sync_debug_mode``): synchronizing calls counted during
   Lightning training steps and during evaluation batches of ``NerModule``, after warmup. The
   split's epoch end (scoring) is excluded: it syncs once by design.

Without CUDA it says so and exits 1: these are GPU figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
MODELS = Path(os.environ.get("NERLIT_MODELS_DIR", REPO.parent / "shared" / "models"))
LABELS = ["O", "B-geo", "I-geo", "B-per", "I-per", "B-org", "I-org", "B-tim", "I-tim"]
CHOICES = ("auto", "efficient", "cudnn", "flash", "math")
#: cuda; ``--dry-run`` runs every code path on the CPU with a tiny model (for the tests)
DEVICE = "cuda"
#: encoder config overrides (the dry run's tiny shapes)
OVERRIDES: dict = {}


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def network(model_dir: Path, attention: str = "auto", **overrides):
    from transformers import AutoConfig

    from nerlit.models.network import NerNetwork

    config = AutoConfig.from_pretrained(model_dir, **{**OVERRIDES, **overrides}).to_dict()
    torch.manual_seed(0)
    return NerNetwork.build(config, LABELS, attention=attention).to(DEVICE).train()


def batch(size: int, length: int, vocab: int = 28000, seed: int = 0) -> dict:
    """Random ids with a padding mask: rows of random real length up to ``length``."""
    generator = torch.Generator().manual_seed(seed + length)
    ids = torch.randint(1000, vocab, (size, length), generator=generator)
    real = torch.randint(max(2, length // 2), length + 1, (size,), generator=generator)
    real[0] = length  # the batch is padded to its longest row, as nerlit's are
    mask = (torch.arange(length)[None, :] < real[:, None]).long()
    labels = torch.randint(0, len(LABELS), (size, length), generator=generator)
    labels[mask == 0] = -100
    return {k: v.to(DEVICE) for k, v in {"ids": ids, "mask": mask, "labels": labels}.items()}


class Stepper:
    """One optimizer step of the network, as nerlit's bare loop runs it (bf16, fused AdamW)."""

    def __init__(self, net) -> None:
        from nerlit.models.optim import adamw

        self.net = net
        self.optimizer = adamw([{"params": list(net.parameters())}], lr=1e-5)

    def __call__(self, b: dict) -> None:
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            logits = self.net(b["ids"], b["mask"])
            loss = self.net.loss(logits, b["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def timed(step, b: dict) -> float:
    sync()
    start = time.perf_counter()
    step(b)
    sync()
    return (time.perf_counter() - start) * 1000


def attention_table(model_dir: Path, size: int) -> list[dict]:
    rows = []
    for i, choice in enumerate(CHOICES):
        row = {"attention": choice}
        try:
            step = Stepper(network(model_dir, choice))
            for _ in range(3):
                step(batch(size, 64))
            row["seen_ms"] = statistics.median(timed(step, batch(size, 64)) for _ in range(8))
            # lengths no choice has run before in this process (cuDNN's plan cache is global)
            new = [65 + 8 * i + k for k in range(1, 8)]
            row["new_ms"] = statistics.median(timed(step, batch(size, n)) for n in new)
            bucketed = [96] * 7  # the same lengths padded to a multiple of 32: one shape
            row["new_padded_32_ms"] = statistics.median(
                timed(step, batch(size, n)) for n in bucketed
            )
        except Exception as error:  # noqa: BLE001 - a kernel the inputs cannot use
            row["error"] = str(error).strip().splitlines()[0][:160]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def launch_profile(model_dir: Path, size: int, length: int, label: str, **overrides) -> dict:
    from torch.profiler import ProfilerActivity, profile

    step = Stepper(network(model_dir, "auto", **overrides))
    b = batch(size, length)
    for _ in range(5):
        step(b)
    sync()
    steps = 10
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step(b)
        sync()
        wall = (time.perf_counter() - start) * 1000 / steps
    events = prof.key_averages()
    launches = sum(
        e.count
        for e in events
        if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC")
    )
    gpu_us = sum(
        getattr(e, "self_device_time_total", 0) or getattr(e, "self_cuda_time_total", 0)
        for e in events
        if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA
    )
    row = {
        "model": label,
        "batch": size,
        "length": length,
        "launches_per_step": launches / steps,
        "gpu_ms_per_step": gpu_us / 1000 / steps,
        "wall_ms_per_step": wall,
    }
    row["gpu_busy_share"] = row["gpu_ms_per_step"] / wall if wall else None
    # the same steps without the profiler's own overhead
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step(b)
    sync()
    row["wall_ms_per_step_unprofiled"] = (time.perf_counter() - start) * 1000 / steps
    print(json.dumps(row), flush=True)
    return row


def sync_count(model_dir: Path, size: int) -> dict:
    """Synchronizing calls per training step and per evaluation batch of NerModule."""
    import lightning as L

    from nerlit.evaluation.metrics import entity_scores
    from nerlit.models.module import NerModule
    from nerlit.models.optim import adamw, linear_warmup

    counts = {"train": 0, "eval": 0}
    # phase["list"]: what warnings.catch_warnings(record=True) records during the fit
    phase = {"on": None, "mark": 0, "list": []}
    windows = [
        {
            "input_ids": b["ids"].cpu(),
            "attention_mask": b["mask"].cpu(),
            "labels": b["labels"].cpu(),
        }
        for b in (batch(size, 48 + 8 * (i % 4), seed=i) for i in range(40))
    ]

    class Batches(torch.utils.data.Dataset):
        def __len__(self):
            return len(windows)

        def __getitem__(self, i):
            b = windows[i]
            word_index = torch.where(b["labels"] >= 0, torch.arange(b["labels"].size(1)), -1)
            return {
                **b,
                "word_index": word_index,
                "sentence_index": torch.arange(size) + i * size,
                "num_tokens": int(b["attention_mask"].sum()),
                "num_words": int((b["labels"] >= 0).sum()),
            }

    loader = torch.utils.data.DataLoader(Batches(), batch_size=None)
    module = NerModule(
        LABELS,
        pretrained=str(model_dir),
        from_scratch=True,
        config_overrides=OVERRIDES,
        scorer=entity_scores,
        optimizer=lambda params: adamw(params, lr=1e-5),
        scheduler=lambda opt, total_steps: linear_warmup(opt, total_steps, 0.1),
    )
    module._score = lambda split: {"micro": {"f1": 0.0, "precision": 0.0, "recall": 0.0}}

    class Count(L.Callback):
        def _start(self, name, index):
            if index >= 5:
                phase["on"], phase["mark"] = name, len(phase["list"])
                if DEVICE == "cuda":
                    torch.cuda.set_sync_debug_mode("warn")

        def _end(self):
            if DEVICE == "cuda":
                torch.cuda.set_sync_debug_mode("default")
            if phase["on"]:
                new = phase["list"][phase["mark"] :]
                counts[phase["on"]] += sum("synchroniz" in str(w.message) for w in new)
            phase["on"] = None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self._start("train", batch_idx)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self._end()

        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            self._start("eval", batch_idx)

        def on_validation_batch_end(
            self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
        ):
            self._end()

    trainer = L.Trainer(
        accelerator="gpu" if DEVICE == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed" if DEVICE == "cuda" else "32-true",
        max_steps=len(windows),
        limit_val_batches=len(windows),
        val_check_interval=len(windows),
        num_sanity_val_steps=0,
        log_every_n_steps=50,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Count()],
    )
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        phase["list"] = recorded
        trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    timed_batches = len(windows) - 5
    row = {
        "syncs_per_train_step": counts["train"] / timed_batches,
        "syncs_per_eval_batch": counts["eval"] / timed_batches,
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the tables to this JSON file")
    parser.add_argument("--model-dir", default=str(MODELS / "bert-base-cased-tokenizer"))
    parser.add_argument("--minilm-dir", default=str(MODELS / "all-MiniLM-L6-v2"))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--dry-run", action="store_true", help="every code path on the CPU")
    args = parser.parse_args()
    global DEVICE, OVERRIDES
    minilm_batch, sync_batch = 256, 64
    if args.dry_run:
        DEVICE, args.batch, minilm_batch, sync_batch = "cpu", 4, 4, 4
        OVERRIDES = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
                     "intermediate_size": 64}  # fmt: skip
    elif not torch.cuda.is_available():
        sys.exit("gpu_probe.py measures a GPU: torch sees no CUDA device")
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else "CPU (dry run)"
    print(f"{name}, torch {torch.__version__}", flush=True)
    out: dict = {"device": name, "torch": torch.__version__}
    sections = (
        ("attention", lambda: attention_table(Path(args.model_dir), args.batch)),
        (
            "launches",
            lambda: [
                launch_profile(Path(args.model_dir), args.batch, 48, "bert-base"),
                launch_profile(Path(args.minilm_dir), minilm_batch, 48, "minilm"),
            ],
        ),
        ("syncs", lambda: sync_count(Path(args.minilm_dir), sync_batch)),
    )
    for key, run in sections:
        print(f"== {key}", flush=True)
        try:
            out[key] = run()
        except Exception as error:  # noqa: BLE001 - report and go on to the next section
            out[key] = {"error": f"{type(error).__name__}: {error}"[:400]}
            print(out[key], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

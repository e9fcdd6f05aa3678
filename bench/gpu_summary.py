"""The figures of one ``bench/gpu.sh`` run as a table, and its machine-readable last line.

    python bench/gpu_summary.py LOG_DIR [--gpu NAME]

Reads the JSON files the run wrote (``throughput-*.json``, ``probe.json``, ``tta-minilm.json``,
``startup.json``); a step that did not run reads ``nan``. The last line is exactly these five
fields, space-separated on one line:

    gpu_speedup_vs_hf_best_bert=X gpu_speedup_vs_hf_best_minilm=Y mfu_preset_bert=Z
    tta_gpu_seconds=S tta_gpu_speedup=R

(nerlit's words/s over the faster HF Trainer variant at equal batch, BERT-base and MiniLM
shapes; nerlit's share of the measured bf16 matmul peak with its GPU preset, BERT-base; nerlit's
seconds to the MiniLM dev F1 target with ``trainer=gpu``; the HF Trainer's seconds over it).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def read(directory: Path, name: str) -> dict:
    path = directory / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def speedup(results: dict) -> float:
    nerlit = results.get("nerlit", {}).get("words_per_s")
    peers = [results[n]["words_per_s"] for n in ("hf", "hf-grouped") if n in results]
    return nerlit / max(peers) if nerlit and peers else math.nan


def throughput_rows(label: str, data: dict) -> list[str]:
    rows = []
    for name, r in data.get("results", {}).items():
        rows.append(
            f"| {label} | {name} | {r['tokens_per_s']:,.0f} | {r['peak_share']:.1%} | "
            f"{r['seconds'] * 1000 / r['steps']:.1f} | {r.get('peak_gpu_mb', 0):,.0f} |"
        )
    return rows


def fmt(value: float, digits: int = 2) -> str:
    return "nan" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log_dir", type=Path)
    parser.add_argument("--gpu", default="GPU")
    args = parser.parse_args()
    bert = read(args.log_dir, "throughput-bert")
    minilm = read(args.log_dir, "throughput-minilm")
    lines = [f"training throughput on {args.gpu} (bf16; tokens/s count real subwords):", ""]
    lines += ["| shapes | variant | tokens/s | share of bf16 peak | ms/step | peak GPU MB |"]
    lines += ["|---|---|---:|---:|---:|---:|"]
    for label, name in (
        ("BERT-base", "throughput-bert"),
        ("BERT-base, large budget", "throughput-bert-big"),
        ("MiniLM", "throughput-minilm"),
        ("MiniLM, compiled", "throughput-minilm-compile"),
    ):
        lines += throughput_rows(label, read(args.log_dir, name))
    probe = read(args.log_dir, "probe")
    if isinstance(probe.get("attention"), list):
        lines += ["", "| model.attention | seen length ms | new length ms | new, padded to 32 ms |"]
        lines += ["|---|---:|---:|---:|"]
        for row in probe["attention"]:
            if "error" in row:
                lines.append(f"| {row['attention']} | {row['error']} | | |")
            else:
                lines.append(
                    f"| {row['attention']} | {row['seen_ms']:.1f} | {row['new_ms']:.1f} | "
                    f"{row['new_padded_32_ms']:.1f} |"
                )
    if isinstance(probe.get("launches"), list):
        lines += ["", "| shapes | kernel launches/step | GPU ms/step | wall ms/step | GPU busy |"]
        lines += ["|---|---:|---:|---:|---:|"]
        for row in probe["launches"]:
            lines.append(
                f"| {row['model']} b{row['batch']} x{row['length']} | "
                f"{row['launches_per_step']:.0f} | {row['gpu_ms_per_step']:.1f} | "
                f"{row['wall_ms_per_step_unprofiled']:.1f} | {row['gpu_busy_share']:.0%} |"
            )
    if isinstance(probe.get("syncs"), dict) and "error" not in probe["syncs"]:
        syncs = probe["syncs"]
        lines.append(
            f"\nhost syncs: {syncs['syncs_per_train_step']:.2f} per training step, "
            f"{syncs['syncs_per_eval_batch']:.2f} per evaluation batch"
        )
    tta = read(args.log_dir, "tta-minilm").get("runs", {})
    tta_seconds, tta_speedup = math.nan, math.nan
    for system, runs in tta.items():
        for r in runs:
            lines.append(
                f"time to accuracy, {system}: "
                + (f"{r['seconds_to_target']:.1f} s" if r["reached"] else "not reached")
                + f" (start-up {r.get('startup_seconds')} s), test F1 {r['test_f1']:.4f}"
            )
    nerlit_runs, hf_runs = tta.get("nerlit", []), tta.get("hf", [])
    if nerlit_runs and nerlit_runs[0]["reached"]:
        tta_seconds = nerlit_runs[0]["seconds_to_target"]
        if hf_runs and hf_runs[0]["reached"]:
            tta_speedup = hf_runs[0]["seconds_to_target"] / tta_seconds
        elif hf_runs:
            tta_speedup = math.inf
    startup = read(args.log_dir, "startup")
    if startup:
        lines.append(f"nerlit train trainer=gpu: start-up {startup.get('startup_seconds')} s")
    preset = bert.get("results", {}).get("nerlit-preset", {}).get("peak_share", math.nan)
    print("\n".join(lines))
    print(
        f"gpu_speedup_vs_hf_best_bert={fmt(speedup(bert.get('results', {})))} "
        f"gpu_speedup_vs_hf_best_minilm={fmt(speedup(minilm.get('results', {})))} "
        f"mfu_preset_bert={fmt(preset)} tta_gpu_seconds={fmt(tta_seconds, 1)} "
        f"tta_gpu_speedup={fmt(tta_speedup)}"
    )


if __name__ == "__main__":
    main()

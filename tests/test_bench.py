"""The benchmarks run end to end on a tiny model, and their last lines keep their format.

The lead reads those last lines into issues and docs/results.md, so a benchmark that breaks or
changes its summary must fail here, not during a measurement hours long. Timings are never
asserted: they depend on the machine. The fast tests run the variants and systems inside this
process (no interpreter start-ups); the slow ones run the scripts as the lead does, Flair
included (its virtualenv is built on first use: a few minutes, once).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT, make_sentences, tiny_checkpoint, write_gmb_csv

sys.path.insert(0, str(REPO_ROOT / "bench"))
import time_to_accuracy as tta  # noqa: E402
import train_throughput as tp  # noqa: E402

NUMBER = r"(\d+\.\d\d|nan)"
THROUGHPUT_LAST = re.compile(
    rf"^speedup_vs_hf_best={NUMBER} speedup_vs_flair={NUMBER} "
    rf"overhead_vs_bare={NUMBER} peak_share={NUMBER}$"
)
INFERENCE_LAST = re.compile(
    rf"^speedup_vs_hf_best={NUMBER} speedup_vs_ort={NUMBER} agreement_fp32=(\d\.\d{{4}}) "
    r"int8_f1_delta=(-?\d\.\d{4}) best_backend=(torch|onnx)-(fp32|bf16|int8) "
    rf"overhead_vs_bare={NUMBER}$"
)
SERVE_MEMORY_LAST = re.compile(
    rf"^after_max_vs_idle={NUMBER} after_traffic_vs_idle={NUMBER} idle_mb=(\d+)$"
)
SERVE_LAST = re.compile(
    r"^serve_vs_inprocess_(\d+)=(\d+\.\d\d) errors=(\d+) p99_ms_\d+=\S+ differ=(\d+)$"
)
TTA_LAST = re.compile(
    r"^tta_speedup_vs_best_peer=(\d+\.\d\d|inf|nan) test_f1_delta=(-?\d\.\d{4}|nan)$"
)


@pytest.fixture
def tiny_gmb(tmp_path, monkeypatch):
    """A GMB-layout corpus of 200 sentences where the benchmarks look for GMB."""
    data = tmp_path / "data"
    plain = write_gmb_csv(tmp_path / "gmb.csv", make_sentences(200))
    (data / "gmb").mkdir(parents=True)
    (data / "gmb" / "ner_dataset.csv.gz").write_bytes(gzip.compress(plain.read_bytes()))
    monkeypatch.setattr(tp, "GMB", data / "gmb" / "ner_dataset.csv.gz")
    return data


def test_throughput_variants_and_last_line(tiny_gmb, tmp_path):
    """nerlit, the length-grouped HF Trainer and the bare loop each time 2 steps of tiny BERT."""
    args = tp.parse_args(
        ["--model", "tiny", "--sentences", "48", "--steps", "3", "--warmup", "1"]
        + ["--precision", "32-true"]
    )
    args.resolved = tp.resolve_model(args.model)
    config = tp.encoder_config(args.resolved)
    results = {}
    for name in ("nerlit", "hf-grouped", "bare"):
        (tmp_path / name).mkdir()
        result = tp.VARIANTS[name](args, tmp_path / name)
        result.update(tp.peak_memory("cpu"))
        results[name] = tp.add_peak_share(result, config, 1e12, args.batch_size)
        assert result["steps"] == 2
        assert result["tokens"] > result["words"] > 0
        assert tp.variant_line(name, result, "fp32").strip().startswith(name)
    last = tp.summary_lines(results)[-1]
    match = THROUGHPUT_LAST.match(last)
    assert match, last
    assert match.group(2) == "nan"  # no flair run
    assert all(group != "nan" for i, group in enumerate(match.groups()) if i != 1)


def test_throughput_token_budget_and_warmup_time(tiny_gmb, tmp_path):
    """--max-tokens reaches nerlit's batches (no timed batch holds more real subwords than the
    budget), and the untimed warmup's seconds are reported apart from the timed steps."""
    args = tp.parse_args(
        ["--model", "tiny", "--sentences", "200", "--steps", "4", "--warmup", "1"]
        + ["--precision", "32-true", "--batch-size", "128", "--max-tokens", "512"]
    )
    args.resolved = tp.resolve_model(args.model)
    budget = tp.VARIANTS["nerlit"](args, tmp_path)
    assert budget["steps"] == 3
    assert 0 < budget["tokens"] <= 3 * 512
    assert budget["warmup_seconds"] > 0
    args.max_tokens = None
    (tmp_path / "plain").mkdir()
    plain = tp.VARIANTS["nerlit"](args, tmp_path / "plain")
    assert plain["tokens"] > 3 * 512  # up to 128 sentences of ~12 subwords a batch


@pytest.mark.slow
def test_throughput_compile_switch(tiny_gmb, tmp_path):
    """--compile trains the compiled network (its compile time falls in the warmup)."""
    args = tp.parse_args(
        ["--model", "tiny", "--sentences", "48", "--steps", "3", "--warmup", "1"]
        + ["--precision", "32-true", "--compile"]
    )
    args.resolved = tp.resolve_model(args.model)
    result = tp.VARIANTS["bare"](args, tmp_path)
    assert result["steps"] == 2 and result["tokens"] > 0


def test_throughput_gpu_preset_variant_uses_the_presets_batches(tiny_gmb, tmp_path):
    """nerlit-preset trains with trainer=gpu's token budget and learning rate; the peak share
    counts its windows, not batch_size x steps (its batches are of varying size)."""
    args = tp.parse_args(
        ["--model", "tiny", "--sentences", "200", "--steps", "3", "--warmup", "1"]
        + ["--precision", "32-true", "--workers", "0"]
    )
    args.resolved = tp.resolve_model(args.model)
    preset = tp.gpu_preset()
    assert preset["max_tokens"] and preset["batch_size"] > args.batch_size
    result = tp.VARIANTS["nerlit-preset"](args, tmp_path)
    assert result["steps"] == 2
    assert result["windows"] > 2 * args.batch_size, "the preset's batches are larger"
    assert result["tokens"] <= 2 * preset["max_tokens"]


def test_gpu_summary_reads_a_runs_files_and_ends_with_its_line(tmp_path):
    """bench/gpu_summary.py over the JSON files bench/gpu.sh writes (made up here)."""
    figures = {"words_per_s": 1.0, "tokens_per_s": 1.0, "peak_share": 0.3, "seconds": 1.0}
    figures["steps"] = 10
    write = lambda name, data: (tmp_path / f"{name}.json").write_text(json.dumps(data))  # noqa: E731
    speeds = {"nerlit": 150.0, "nerlit-preset": 300.0, "hf": 100.0, "hf-grouped": 120.0}
    write(
        "throughput-bert",
        {"results": {k: {**figures, "words_per_s": v} for k, v in speeds.items()}},
    )
    write("tta-minilm", {"runs": {
        "nerlit": [{"reached": True, "seconds_to_target": 10.0, "test_f1": 0.83}],
        "hf": [{"reached": True, "seconds_to_target": 40.0, "test_f1": 0.82}],
    }})  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "gpu_summary.py"), str(tmp_path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.splitlines()[-1] == (
        "gpu_speedup_vs_hf_best_bert=1.25 gpu_speedup_vs_hf_best_minilm=nan "
        "mfu_preset_bert=0.30 tta_gpu_seconds=10.0 tta_gpu_speedup=4.00"
    )


@pytest.mark.slow
def test_gpu_probe_runs_every_section_on_a_cpu(tmp_path):
    """bench/gpu_probe.py --dry-run: the GPU script's code paths, on a tiny model on the CPU."""
    out = tmp_path / "probe.json"
    script = str(REPO_ROOT / "bench" / "gpu_probe.py")
    subprocess.run(
        [sys.executable, script, "--dry-run", "--json", str(out)],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    probe = json.loads(out.read_text())
    assert [row["attention"] for row in probe["attention"]][0] == "auto"
    assert probe["attention"][0]["seen_ms"] > 0
    assert "model.attention=cudnn" in probe["attention"][2]["error"]
    assert probe["launches"][0]["wall_ms_per_step"] > 0
    assert probe["syncs"] == {"syncs_per_train_step": 0.0, "syncs_per_eval_batch": 0.0}


def test_precision_and_device_fallbacks():
    """auto picks a precision the machine runs natively; cuda without CUDA falls back loudly."""
    assert tp.resolve_precision("auto", "cpu") in ("bf16-mixed", "32-true")
    assert tp.resolve_precision("32-true", "cpu") == "32-true"
    if not tp.torch.cuda.is_available():
        assert tp.resolve_device("cuda") == "cpu"
        assert tp.resolve_device("auto") == "cpu"


def test_hf_tags_read_first_subwords_and_stray_inside():
    """HF's argmax at first subwords, truncated words as O, a stray I-X starting an entity."""
    id2label = {0: "O", 1: "B-per", 2: "I-per", 3: "I-geo"}
    logits = np.zeros((1, 6, 4))
    for position, label in ((1, 3), (2, 2), (3, 0), (4, 2)):
        logits[0, position, label] = 1.0
    label_ids = np.array([[-100, 0, -100, 0, 0, -100]])  # words at 1, 3, 4; 2 is a continuation
    tags = tta.hf_word_tags(logits, label_ids, [["a", "b", "c", "d"]], id2label)
    assert tags == [["B-geo", "O", "B-per", "O"]]
    assert tta.stray_inside_begins(["I-per", "I-per", "O", "I-geo"]) == [
        "B-per",
        "I-per",
        "O",
        "B-geo",
    ]


def _tta_files(tmp_path):
    sentences = make_sentences(96, seed=3)
    parts = {"train": sentences[:64], "dev": sentences[64:80], "test": sentences[80:]}
    paths = {}
    for split, rows in parts.items():
        paths[split] = tmp_path / f"{split}.jsonl"
        text = "\n".join(json.dumps({"tokens": w, "tags": t}) for w, t in rows)
        paths[split].write_text(text + "\n")
    return {k: str(v) for k, v in paths.items()}


def test_time_to_accuracy_nerlit_and_hf_and_last_line(tmp_path):
    """Target 0 is met at the first evaluation: the clock, the scorer and test F1 all report."""
    args = tta.parse_args(["--target", "0", "--eval-every", "32", "--max-seconds", "120"])
    paths = _tta_files(tmp_path)
    model = tp.materialize(tp.resolve_model("tiny"), tmp_path / "model")
    runs = {}
    for system in ("nerlit", "hf"):
        job = tta.make_job(args, paths, tmp_path / system, seed=1)
        job.update(device="cpu", precision="32-true", nerlit_preset="tiny")
        job["model"] = {"dir": model, "materialized": True}
        result = runs.setdefault(system, [])
        result.append(tta.CHILDREN[system](job))
        run = result[0]
        assert run["reached"], run
        assert 0 < run["seconds_to_target"] <= run["seconds"]
        assert run["curve"][0]["sentences"] >= 32
        assert 0.0 <= run["test_f1"] <= 1.0
        assert system in tta.run_line(system, 1, run)
        # start-up: the clock at the end of the first optimizer step, for every system
        assert 0 < run["startup_seconds"] <= run["seconds_to_target"]
        assert "start-up" in tta.run_line(system, 1, run)
        # nerlit's evaluations are timed apart (their share of the time to target); HF's are not
        if system == "nerlit":
            assert 0 < run["eval_seconds"] < run["seconds"]
            assert "s of the clock" in tta.run_line(system, 1, run)
        else:
            assert run["eval_seconds"] is None
    last = tta.summary_lines(runs)[-1]
    match = TTA_LAST.match(last)
    assert match and "nan" not in last, last


def test_hf_predictions_are_put_back_in_dataset_order(tmp_path):
    """With length grouping, transformers 5 shuffles evaluation batches too; the benchmark must
    score each prediction against its own sentence's gold."""
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    model_dir = tp.materialize(tp.resolve_model("tiny"), tmp_path / "model")
    sentences = make_sentences(40, seed=5)
    labels = sorted({t for _, tags in sentences for t in tags})
    label2id = {label: i for i, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    features = tp.hf_features(sentences, tokenizer, label2id)
    model = AutoModelForTokenClassification.from_pretrained(model_dir, num_labels=len(labels))
    arguments = TrainingArguments(
        output_dir=str(tmp_path / "hf"),
        per_device_eval_batch_size=4,
        train_sampling_strategy="group_by_length",
        use_cpu=True,
        report_to=[],
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
    )
    predicted = trainer.predict(features)
    order = tta.prediction_order(trainer, features)
    assert order != list(range(len(features)))  # the shuffle this guards against happens
    restored = tta.in_dataset_order(predicted.label_ids, order)
    for row, feature in zip(restored, features):
        expected = feature["labels"]
        assert list(row[: len(expected)]) == expected and (row[len(expected) :] == -100).all()


def test_time_to_accuracy_reports_a_system_that_never_reached():
    never = {"reached": False, "seconds_to_target": None, "seconds": 9.0, "sentences": 64}
    never.update(best_dev_f1=0.1, test_f1=0.1, curve=[])
    reached = {"reached": True, "seconds_to_target": 4.0, "seconds": 4.0, "sentences": 64}
    reached.update(best_dev_f1=0.9, test_f1=0.8, curve=[])
    lines = tta.summary_lines({"nerlit": [reached], "hf": [never]})
    assert lines[-1] == "tta_speedup_vs_best_peer=inf test_f1_delta=nan"
    assert "never" in lines[1]
    lines = tta.summary_lines({"nerlit": [never], "hf": [reached]})
    assert lines[-1] == "tta_speedup_vs_best_peer=nan test_f1_delta=nan"


def _run(script: str, argv: list[str], data_dir, timeout: int) -> str:
    env = {**os.environ, "NERLIT_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / script), *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_train_throughput_script_all_variants(tiny_gmb):
    """``make bench-train``'s script, every variant, Flair in its own virtualenv."""
    argv = ["--model", "tiny", "--sentences", "64", "--steps", "3", "--warmup", "1"]
    last = _run("train_throughput.py", argv + ["--precision", "32-true"], tiny_gmb, 1200)
    match = THROUGHPUT_LAST.match(last)
    assert match and "nan" not in last, last


@pytest.mark.slow
def test_time_to_accuracy_script_all_systems(tiny_gmb):
    """``make bench-tta``'s script, every system, one seed, a target met at once."""
    argv = ["--model", "tiny", "--subset", "64", "--dev-sentences", "16", "--test-sentences"]
    argv += ["16", "--target", "0", "--eval-every", "32", "--max-seconds", "60", "--seeds", "1"]
    last = _run("time_to_accuracy.py", argv + ["--precision", "32-true"], tiny_gmb, 1200)
    match = TTA_LAST.match(last)
    assert match and "nan" not in last, last


@pytest.mark.slow
def test_inference_script_every_system(tiny_gmb, tmp_path_factory):
    """``make bench-inference``'s script on a tiny checkpoint: every pipeline and backend runs,
    and the int8 bound is scored on the whole (tiny) test split."""
    checkpoint = tiny_checkpoint(tmp_path_factory)
    argv = ["--checkpoint", str(checkpoint), "--sentences", "12", "--repeats", "1"]
    last = _run("inference.py", argv, tiny_gmb, 1200)
    match = INFERENCE_LAST.match(last)
    assert match and "nan" not in last, last


@pytest.mark.slow
def test_serve_script_two_client_counts(tiny_gmb, tmp_path_factory):
    """``make bench-serve``'s script: the real server, two client counts, nothing lost."""
    checkpoint = tiny_checkpoint(tmp_path_factory)
    argv = ["--model", str(checkpoint), "--clients", "1,4", "--seconds", "2"]
    last = _run("serve.py", argv + ["--sentences", "20", "--precision", "fp32"], tiny_gmb, 600)
    match = SERVE_LAST.match(last)
    assert match, last
    assert match.group(1) == "4" and match.group(3) == "0" and match.group(4) == "0", last


@pytest.mark.slow
def test_serve_memory_script_reads_the_servers_rss_after_each_burst(tiny_gmb, tmp_path_factory):
    """``make bench-serve-memory``'s script: the real server, one maximum-size request."""
    checkpoint = tiny_checkpoint(tmp_path_factory)
    argv = ["--model", str(checkpoint), "--max-requests", "1", "--small-requests", "5"]
    last = _run("serve_memory.py", [*argv, "--settle", "0.5"], tiny_gmb, 600)
    match = SERVE_MEMORY_LAST.match(last)
    assert match and "nan" not in last, last
    assert float(match.group(1)) >= 0.5 and int(match.group(3)) > 100, last

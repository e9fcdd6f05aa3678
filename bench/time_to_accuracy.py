"""Time to accuracy: wall seconds until each system's dev F1 first reaches a target, same data.

    python bench/time_to_accuracy.py [--subset N] [--target 0.82] [--seeds 3] [--max-seconds S]

MLPerf Training's metric, applied to NER fine-tuning: per-step speed at equal settings says
little about how long a user waits for a good model; defaults, batching, schedule, evaluation
cost and features (casing features, constrained decoding) decide that. Each system trains with
its own best recipe, all in the same precision (``--precision auto``: bf16 autocast where the
device multiplies bf16 natively, fp32 where it would be emulated; see train_throughput.py):

- ``nerlit``: ``nerlit train``'s own config (the defaults are ``make train``'s: MiniLM with
  casing features, 2 epochs, batch 32, MiniLM's lr 1e-4 with 10% warmup, length-grouped
  batches, constrained decoding), built by ``nerlit.train.build``; ``--nerlit-args`` adds Hydra
  overrides (``"trainer.max_epochs=4"`` is the ``gmb_minilm`` recipe).
- ``hf``: the Hugging Face Trainer with run_ner.py's preprocessing (first subword labelled,
  -100 elsewhere, truncation at the tokenizer's limit) and run_ner.py's defaults (3 epochs, no
  warmup, no weight decay, the fused AdamW), plus length grouping
  (``train_sampling_strategy="group_by_length"``), batch 32 and ``--hf-lr``. The default 1e-4
  is the faster of the two rates a fair tuner tries for MiniLM (5e-5, 1e-4): on this project's
  CPU, 8,000 GMB sentences, it reached dev F1 0.78 in 374 s where 5e-5 never did
  (docs/results.md); ``--systems hf --hf-lr 5e-5`` re-checks it on another machine.
- ``flair``: Flair's ``SequenceTagger`` over ``TransformerWordEmbeddings(fine_tune=True)`` with
  Flair's own NER example recipe (examples/ner/run_ner.py: last layer, first-subword pooling, no
  CRF/RNN; ``ModelTrainer.fine_tune`` with lr 5e-5, batch 8, 10 epochs, linear warmup 10%, no
  weight decay; the FLERT tutorial's 5e-6 is for XLM-R large), plus autocast (``use_amp``) and
  the fused AdamW. It runs in its own virtualenv (Flair needs transformers < 5; see
  train_throughput.py) on the same sentences as CoNLL column files.

Protocol. Data: nerlit's fixed GMB split; the first ``--subset`` train sentences (0: all
38,367), the first ``--dev-sentences`` of the dev split, the first ``--test-sentences`` of the
test split (0: all 4,796), written once to files every system reads. Clock: it starts in each
system's process once its libraries are imported, before it reads the data, tokenizes or loads
the model, and runs through training and every dev evaluation (evaluation is part of the time)
until the evaluation that first reaches ``--target``. Evaluations: after every ``--eval-every``
training sentences, the same count for every system whatever its batch size (by default a
quarter of the train sentences, at most 4000 = 125 batches of 32), and once at the end of
training; each uses the system's own inference path (nerlit's validation loop with constrained
decoding; ``Trainer.evaluate`` with the argmax at first subwords, a stray I-X starting an entity
as in seqeval's default mode and run_ner.py's metric; Flair's ``tagger.predict`` spans). Every
system's tags are scored by one scorer: nerlit's ``entity_scores`` (seqeval strict IOB2 at word
level), micro F1 over the five reference types geo, gpe, org, per, tim. At the target, test F1
is scored the same way, off the clock. A run stops at the target, at ``--max-seconds`` (checked
after each training batch; an evaluation under way finishes) or when its recipe's epochs end;
the last two mean it never reached the target. Checkpointing is off for every system.
``--seeds N`` runs each system with seeds 1..N and reports medians, a run that never reached
counting as infinitely slow. The last line is exactly

    tta_speedup_vs_best_peer=X.XX test_f1_delta=Y.YYYY

(the fastest peer's median seconds to target over nerlit's; nerlit's median test F1 at target
minus that peer's). ``inf``: no peer reached the target and nerlit did; ``nan``: nerlit did not.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_throughput as tp  # noqa: E402  (the shared model, device and Flair helpers)

REFERENCE_TYPES = ("geo", "gpe", "org", "per", "tim")
SYSTEMS = ("nerlit", "hf", "flair")


# -- what every system's process shares ----------------------------------------------------------


def read_jsonl(path: str) -> list[tuple[list[str], list[str]]]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [(row["tokens"], row["tags"]) for row in rows]


def load_scorer():
    """nerlit's ``entity_scores``: imported where nerlit is installed, else (Flair's environment)
    loaded from its file, which needs only seqeval: one scorer for every system."""
    try:
        from nerlit.evaluation.metrics import entity_scores
    except ImportError:
        path = tp.REPO / "src" / "nerlit" / "evaluation" / "metrics.py"
        spec = importlib.util.spec_from_file_location("nerlit_metrics", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        entity_scores = module.entity_scores
    return entity_scores


def stray_inside_begins(tags: list[str]) -> list[str]:
    """An I-X that continues no X entity starts one (seqeval's default reading, run_ner.py's)."""
    out, previous = [], "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


class Tracker:
    """The clock, the evaluation schedule and the dev F1 curve of one run."""

    def __init__(self, job: dict) -> None:
        self.scorer = load_scorer()  # an import (seqeval): before the clock, as every import
        self.start = time.perf_counter()
        self.job = job
        self.dev_gold = [tags for _, tags in read_jsonl(job["dev"])]
        self.test_gold = [tags for _, tags in read_jsonl(job["test"])]
        self.seen = 0  # training sentences consumed
        self.next_eval = job["eval_every"]
        self.curve: list[dict] = []
        self.seconds_to_target: float | None = None
        self.stopped_for_time = False
        self.eval_started: float | None = None  # set where a system's evaluation loop begins
        self.eval_seconds = 0.0  # the clock's seconds spent evaluating (where known)
        self.startup_seconds: float | None = None  # the clock at the first optimizer step's end

    def stepped(self) -> None:
        """Called after every optimizer step: the first one ends the system's start-up (reading
        and tokenizing the data, building the model and trainer, the first step itself)."""
        if self.startup_seconds is None:
            self.startup_seconds = round(self.elapsed(), 2)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def f1(self, gold: list[list[str]], pred: list[list[str]]) -> float:
        if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
            raise RuntimeError("predictions do not cover the gold words one for one")
        scores = self.scorer(gold, pred, mode="strict", reference_types=REFERENCE_TYPES)
        return scores["reference"]["f1"]

    def due(self) -> bool:
        return self.seen >= self.next_eval

    def evaluate(self, pred: list[list[str]]) -> bool:
        """Score a dev prediction (its time counts); True once the target is reached."""
        tp.synchronize(self.job["device"])
        f1 = self.f1(self.dev_gold, pred)
        seconds = self.elapsed()
        spent = ""
        if self.eval_started is not None:
            this = time.perf_counter() - self.eval_started
            self.eval_seconds += this
            self.eval_started = None
            spent = f" (this evaluation {this:.1f} s)"
        self.curve.append({"seconds": round(seconds, 2), "sentences": self.seen, "dev_f1": f1})
        while self.next_eval <= self.seen:
            self.next_eval += self.job["eval_every"]
        if f1 >= self.job["target"] and self.seconds_to_target is None:
            self.seconds_to_target = round(seconds, 2)
        print(f"eval: {seconds:.1f} s{spent}, {self.seen} sentences, dev F1 {f1:.4f}", flush=True)
        return self.seconds_to_target is not None

    def out_of_time(self) -> bool:
        if self.elapsed() > self.job["max_seconds"]:
            self.stopped_for_time = True
        return self.stopped_for_time

    def needs_final_eval(self) -> bool:
        """Training ended (its recipe's epochs) with no evaluation of its final weights."""
        if self.seconds_to_target is not None or self.stopped_for_time:
            return False
        return not self.curve or self.curve[-1]["sentences"] != self.seen

    def result(self, test_pred: list[list[str]]) -> dict:
        return {
            "reached": self.seconds_to_target is not None,
            "seconds_to_target": self.seconds_to_target,
            "seconds": round(self.elapsed(), 2),
            "sentences": self.seen,
            "best_dev_f1": max((c["dev_f1"] for c in self.curve), default=0.0),
            "test_f1": self.f1(self.test_gold, test_pred),
            "eval_seconds": round(self.eval_seconds, 2) if self.eval_seconds else None,
            "startup_seconds": self.startup_seconds,
            "curve": self.curve,
        }


# -- nerlit ----------------------------------------------------------------------------------------


def child_nerlit(job: dict) -> dict:
    """``nerlit train``'s config and ``build``; Lightning validates every N steps."""
    import lightning as L
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from nerlit.commands.train import build
    from nerlit.config import CONFIG_DIR

    tracker = Tracker(job)
    model = job["model"]
    overrides = [
        "data=jsonl",
        f"data.train_file={job['train']}",
        f"data.val_file={job['dev']}",
        f"data.test_file={job['test']}",
        f"data.reference_types=[{','.join(REFERENCE_TYPES)}]",
        "data.unknown_labels=o",  # a dev/test label absent from a small subset is no error
        "data.cache=false",  # a cold start, as every system's (the HF Trainer caches nothing)
        f"model={job['nerlit_preset']}",
        f"model.pretrained={model['dir']}",
        f"seed={job['seed']}",
        f"trainer.precision={job['precision']}",
        f"trainer.accelerator={'gpu' if job['device'] == 'cuda' else 'cpu'}",
        "trainer.check_val_every_n_epoch=null",  # every N steps across epochs
        "trainer.num_sanity_val_steps=0",
        "++trainer.enable_checkpointing=false",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "callbacks=none",  # no checkpoints (none for any system), bars or summaries
        "logger=none",
    ]
    if job["workers"]:
        overrides.append(f"data.num_workers={job['workers']}")
    if model["materialized"]:
        overrides += ["model.from_scratch=false", "model.config_overrides={}"]
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("train.yaml", overrides=overrides + job["nerlit_args"])
    with open_dict(cfg):
        cfg.paths.output_dir = job["workdir"]
        # validation every N batches of the recipe's own batch size (check_val_every_n_epoch
        # is null: N counts across epochs)
        cfg.trainer.val_check_interval = max(1, round(job["eval_every"] / cfg.data.batch_size))
    L.seed_everything(job["seed"], workers=True)
    module, datamodule, trainer = build(cfg)
    if cfg.data.max_tokens:  # token-budget batches: the interval counts their mean size
        windows = len(datamodule.windows["train"])
        mean_batch = windows / max(1, len(datamodule.train_dataloader()))
        trainer.val_check_interval = max(1, round(job["eval_every"] / mean_batch))
    scorer, predicted = module.scorer, {}

    def recording_scorer(gold, pred):
        predicted["last"] = pred
        return scorer(gold, pred)

    module.scorer = recording_scorer

    class TimeToAccuracy(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            tracker.stepped()
            tracker.seen += batch["input_ids"].size(0)  # windows: one per GMB sentence
            if tracker.out_of_time():
                trainer.should_stop = True

        def on_validation_start(self, trainer, pl_module):
            tracker.eval_started = time.perf_counter()

        def on_validation_end(self, trainer, pl_module):
            if tracker.evaluate(predicted["last"]):
                trainer.should_stop = True

    trainer.callbacks.append(TimeToAccuracy())
    trainer.fit(module, datamodule=datamodule)
    if tracker.needs_final_eval():
        trainer.validate(module, datamodule=datamodule, verbose=False)
    stopped = tracker.elapsed()
    trainer.test(module, datamodule=datamodule, verbose=False)
    result = tracker.result(module.test_predictions)
    result["seconds"] = round(stopped, 2)
    return result


# -- the Hugging Face Trainer ----------------------------------------------------------------------


def hf_word_tags(logits, label_ids, gold, id2label: dict) -> list[list[str]]:
    """Each word's tag from the argmax at its first subword; words cut off by truncation: O."""
    best = logits.argmax(-1)
    out = []
    for row, labels, words in zip(best, label_ids, gold):
        tags = [id2label[int(row[i])] for i in (labels != -100).nonzero()[0]][: len(words)]
        out.append(stray_inside_begins(tags + ["O"] * (len(words) - len(tags))))
    return out


def prediction_order(trainer, dataset) -> list[int]:
    """The dataset index of each row ``Trainer.predict``/``evaluate`` returns.

    transformers 5 length-groups *evaluation* batches too when ``train_sampling_strategy=
    "group_by_length"`` (``Trainer._get_eval_sampler``), so predictions come back in a seeded
    shuffled order, not the dataset's. run_ner.py's metric does not notice (it compares
    predictions with ``label_ids`` shuffled alike), but scoring against word-level gold by index
    does: this benchmark's first calibration run scored HF at dev F1 0.02. The sampler is seeded,
    so building it again gives the same order.
    """
    sampler = trainer._get_eval_sampler(dataset)
    return list(sampler) if sampler is not None else list(range(len(dataset)))


def in_dataset_order(rows, order: list[int]):
    """``rows`` (a batch-major array) put back in dataset order."""
    restored = rows.copy()
    restored[order] = rows
    return restored


def child_hf(job: dict) -> dict:
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    tracker = Tracker(job)
    splits = {name: read_jsonl(job[name]) for name in ("train", "dev", "test")}
    labels = sorted({tag for _, tags in splits["train"] for tag in tags})  # as run_ner.py
    label2id = {label: i for i, label in enumerate(labels)}
    id2label = dict(enumerate(labels))
    tokenizer = AutoTokenizer.from_pretrained(job["model"]["dir"])
    features = {k: tp.hf_features(v, tokenizer, label2id) for k, v in splits.items()}
    model = AutoModelForTokenClassification.from_pretrained(
        job["model"]["dir"], num_labels=len(labels), id2label=id2label, label2id=label2id
    )
    batch = job["hf_batch_size"]
    golds = {"dev": tracker.dev_gold, "test": tracker.test_gold}
    phase = {"split": "dev", "stop": False, "pred": None}

    def compute_metrics(prediction):
        logits = prediction.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        gold = golds[phase["split"]]
        order = prediction_order(trainer, features[phase["split"]])
        logits, label_ids = (in_dataset_order(a, order) for a in (logits, prediction.label_ids))
        phase["pred"] = hf_word_tags(logits, label_ids, gold, id2label)
        if phase["split"] == "dev":
            phase["stop"] = tracker.evaluate(phase["pred"])
            return {"f1": tracker.curve[-1]["dev_f1"]}
        return {"f1": tracker.f1(gold, phase["pred"])}

    class TimeToAccuracy(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            tracker.stepped()
            tracker.seen = state.global_step * batch
            if tracker.out_of_time():
                control.should_training_stop = True

        def on_evaluate(self, args, state, control, **kwargs):
            if phase["stop"]:
                control.should_training_stop = True

    arguments = TrainingArguments(
        output_dir=str(Path(job["workdir"]) / "hf"),
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=64,
        learning_rate=job["hf_lr"],
        num_train_epochs=job["hf_epochs"],
        warmup_steps=job["hf_warmup"],
        train_sampling_strategy="group_by_length",
        bf16=job["precision"] == "bf16-mixed",
        use_cpu=job["device"] == "cpu",
        eval_strategy="steps",
        eval_steps=max(1, round(job["eval_every"] / batch)),
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        seed=job["seed"],
        dataloader_num_workers=job["workers"],
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=features["train"],
        eval_dataset=features["dev"],
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=[TimeToAccuracy()],
    )
    trainer.train()
    if tracker.needs_final_eval():
        trainer.evaluate()
    stopped = tracker.elapsed()
    phase["split"] = "test"
    trainer.predict(features["test"])
    result = tracker.result(phase["pred"])
    result["seconds"] = round(stopped, 2)
    return result


# -- Flair (its own environment) -------------------------------------------------------------------


def flair_word_tags(tagger, sentences, amp: bool, device: str) -> list[list[str]]:
    """Flair's predicted spans as IOB2 tags, one per word (Flair's spans are always well formed)."""
    tagger.eval()
    cast = torch_autocast(device) if amp else contextlib.nullcontext()
    with cast:
        tagger.predict(sentences, mini_batch_size=64, label_name="predicted")
    tagger.train()
    out = []
    for sentence in sentences:
        tags = ["O"] * len(sentence)
        for label in sentence.get_labels("predicted"):
            positions = [token.idx - 1 for token in label.data_point.tokens]
            tags[positions[0]] = "B-" + label.value
            for i in positions[1:]:
                tags[i] = "I-" + label.value
        out.append(tags)
    return out


def torch_autocast(device: str):
    import torch

    return torch.autocast(device, dtype=torch.bfloat16)


def child_flair(job: dict) -> dict:
    import flair
    import flair.datasets  # noqa: F401  (imported before the clock starts, as the others' are)
    import flair.embeddings  # noqa: F401
    import flair.models  # noqa: F401
    from flair.data import Corpus
    from flair.trainers import ModelTrainer
    from flair.trainers.plugins import TrainerPlugin

    flair.set_seed(job["seed"])
    amp = tp.flair_setup(job["device"], job["precision"])
    tracker = Tracker(job)
    files = {}
    for split in ("train", "dev", "test"):
        files[split] = Path(job["workdir"]) / "flair" / f"{split}.txt"
        files[split].parent.mkdir(parents=True, exist_ok=True)
        tp.write_columns(files[split], read_jsonl(job[split]))
    read = tp.flair_corpus(files["train"], files["dev"], files["test"])
    # Flair would evaluate a dev split itself after each epoch: ours runs on the common schedule
    corpus = Corpus(train=read.train, dev=None, test=None, sample_missing_splits=False)
    tagger = tp.flair_tagger(corpus, job["model"]["dir"])
    dev, test = list(read.dev), list(read.test)

    class Stop(Exception):
        """Target reached or time up: leave Flair's loop after this batch."""

    class TimeToAccuracy(TrainerPlugin):
        @TrainerPlugin.hook
        def after_training_batch(self, batch, **kwargs):
            tracker.stepped()
            tracker.seen += len(batch)
            if tracker.due() and tracker.evaluate(flair_word_tags(tagger, dev, amp, job["device"])):
                raise Stop
            if tracker.out_of_time():
                raise Stop

    with contextlib.suppress(Stop):
        ModelTrainer(tagger, corpus).fine_tune(
            Path(job["workdir"]) / "flair-run",
            learning_rate=job["flair_lr"],
            mini_batch_size=job["flair_batch_size"],
            max_epochs=job["flair_epochs"],
            warmup_fraction=0.1,
            use_amp=amp,
            plugins=[TimeToAccuracy()],
            save_final_model=False,
            create_file_logs=False,
            create_loss_file=False,
            **tp.flair_optimizer_kwargs(job["device"]),
        )
    if tracker.needs_final_eval():
        tracker.evaluate(flair_word_tags(tagger, dev, amp, job["device"]))
    stopped = tracker.elapsed()
    result = tracker.result(flair_word_tags(tagger, test, amp, job["device"]))
    result["seconds"] = round(stopped, 2)
    return result


CHILDREN = {"nerlit": child_nerlit, "hf": child_hf, "flair": child_flair}


# -- the parent: data, runs, medians ---------------------------------------------------------------


def write_data(args, work: Path) -> dict:
    """The common train subset, dev and test sentences, as JSONL (CoNLL columns for Flair)."""
    corpus = tp.gmb_corpus()
    parts = {
        "train": corpus.train[: args.subset or None],
        "dev": corpus.val[: args.dev_sentences or None],
        "test": corpus.test[: args.test_sentences or None],
    }
    paths = {}
    for split, sentences in parts.items():
        paths[split] = str(work / f"{split}.jsonl")
        Path(paths[split]).write_text(
            "\n".join(json.dumps({"tokens": s.words, "tags": s.tags}) for s in sentences) + "\n"
        )
    sizes = {split: len(sentences) for split, sentences in parts.items()}
    return {"paths": paths, "sizes": sizes}


def run_child(system: str, job: dict, work: Path) -> dict:
    """One system, one seed, in a fresh process (Flair's in its own virtualenv)."""
    python = str(tp.flair_python()) if system == "flair" else sys.executable
    job_path = work / f"{system}-{job['seed']}.json"
    job_path.write_text(json.dumps(job))
    log = work / f"{system}-{job['seed']}.log"
    command = [python, __file__, "--child", system, "--job", str(job_path)]
    with open(log, "w") as out:
        done = subprocess.run(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tp.REPO,
            preexec_fn=tp.die_with_parent,
        )
    text = log.read_text(errors="replace")
    line = next((x for x in text.splitlines()[::-1] if x.startswith("RESULT ")), None)
    if done.returncode or line is None:
        sys.exit(f"{system} (seed {job['seed']}) failed:\n{text[-5000:]}")
    return json.loads(line[len("RESULT ") :])


def median_seconds(runs: list[dict]) -> float:
    return statistics.median(r["seconds_to_target"] if r["reached"] else math.inf for r in runs)


def make_job(args, paths: dict, workdir: Path, seed: int) -> dict:
    """What one run's process reads: the data files, the protocol and every system's recipe."""
    return {
        **paths,
        "workdir": str(workdir),
        "seed": seed,
        "device": args.device,
        "precision": args.precision,
        "target": args.target,
        "max_seconds": args.max_seconds,
        "eval_every": args.eval_every,
        "workers": args.workers,
        "nerlit_args": args.nerlit_args.split(),
        "hf_lr": args.hf_lr,
        "hf_epochs": args.hf_epochs,
        "hf_batch_size": args.hf_batch_size,
        "hf_warmup": args.hf_warmup,
        "flair_lr": args.flair_lr,
        "flair_epochs": args.flair_epochs,
        "flair_batch_size": args.flair_batch_size,
    }


def run_line(system: str, seed: int, r: dict) -> str:
    if r["reached"]:
        reached = f"target at {r['seconds_to_target']:.1f} s"
    else:
        reached = (
            f"never reached the target ({r['seconds']:.1f} s, best dev F1 {r['best_dev_f1']:.4f})"
        )
    curve = " ".join(f"{c['seconds']:.0f}s:{c['dev_f1']:.3f}" for c in r["curve"])
    evaluations = f"{len(r['curve'])} evaluations"
    if r.get("startup_seconds") is not None:
        reached = f"start-up {r['startup_seconds']:.1f} s, " + reached
    if r.get("eval_seconds"):
        evaluations += f" ({r['eval_seconds']:.1f} s of the clock)"
    return (
        f"{system:>7} seed {seed}: {reached}; {evaluations}, "
        f"{r['sentences']} training sentences; test F1 {r['test_f1']:.4f}; dev F1 curve {curve}"
    )


def summary_lines(runs: dict[str, list[dict]]) -> list[str]:
    """Medians per system, then the one machine-readable last line."""
    lines, summary = [], {}
    for system, results in runs.items():
        seconds = median_seconds(results)
        test_f1 = statistics.median(r["test_f1"] for r in results)
        reached = sum(r["reached"] for r in results)
        summary[system] = (seconds, test_f1)
        shown = f"{seconds:.1f} s" if math.isfinite(seconds) else "never (median)"
        startups = [r["startup_seconds"] for r in results if r.get("startup_seconds") is not None]
        startup = f", median start-up {statistics.median(startups):.1f} s" if startups else ""
        lines.append(
            f"{system:>7}: median seconds to target {shown}, median test F1 {test_f1:.4f} "
            f"(at the target; at the end where never reached); reached in "
            f"{reached}/{len(results)} runs{startup}"
        )
    peers = {s: v for s, v in summary.items() if s != "nerlit"}
    best_peer = min(peers, key=lambda s: peers[s][0]) if peers else None
    speedup, delta = "nan", "nan"
    if "nerlit" in summary and best_peer and math.isfinite(summary["nerlit"][0]):
        nerlit_seconds, nerlit_f1 = summary["nerlit"]
        peer_seconds, peer_f1 = peers[best_peer]
        if math.isfinite(peer_seconds):
            speedup = f"{peer_seconds / nerlit_seconds:.2f}"
            delta = f"{nerlit_f1 - peer_f1:.4f}"
            lines.append(f"fastest peer: {best_peer}")
        else:
            speedup = "inf"
            lines.append("no peer reached the target")
    lines.append(f"tta_speedup_vs_best_peer={speedup} test_f1_delta={delta}")
    return lines


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--subset", type=int, default=0, help="train sentences (0: all 38,367)")
    parser.add_argument("--dev-sentences", type=int, default=1000, help="the fixed dev sentences")
    parser.add_argument("--test-sentences", type=int, default=0, help="test sentences (0: all)")
    parser.add_argument("--target", type=float, default=0.82, help="5-type dev micro F1")
    parser.add_argument("--max-seconds", type=float, default=3600, help="per run")
    parser.add_argument(
        "--eval-every",
        type=int,
        default=0,
        help="training sentences between evaluations (0: a quarter of the train sentences, "
        "at most 4000)",
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--model", default="minilm", help="a nerlit model preset (minilm, tiny ...) or a folder"
    )
    parser.add_argument("--model-dir", help="the preset's folder, if not found by name")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument(
        "--precision",
        default="auto",
        help="bf16-mixed, 32-true, or auto: bf16 where the device multiplies bf16 natively",
    )
    parser.add_argument("--workers", type=int, default=0, help="data-loader workers (nerlit, HF)")
    parser.add_argument(
        "--nerlit-args", default="", help='Hydra overrides for nerlit, e.g. "optimizer.lr=1e-4"'
    )
    parser.add_argument("--hf-lr", type=float, default=1e-4)
    parser.add_argument("--hf-epochs", type=float, default=3.0)
    parser.add_argument("--hf-batch-size", type=int, default=32)
    parser.add_argument("--hf-warmup", type=float, default=0.0, help="ratio of all steps")
    parser.add_argument("--flair-lr", type=float, default=5e-5)
    parser.add_argument("--flair-epochs", type=int, default=10)
    parser.add_argument("--flair-batch-size", type=int, default=8)
    parser.add_argument("--keep", help="keep the data, jobs and logs in this folder")
    parser.add_argument("--json", help="also write every run's figures to this JSON file")
    return parser.parse_args(argv)


def child_main(argv: list[str]) -> None:
    """``--child SYSTEM --job FILE``: one run; prints its RESULT line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=list(CHILDREN))
    parser.add_argument("--job")
    args = parser.parse_args(argv)
    job = json.loads(Path(args.job).read_text())
    result = CHILDREN[args.child](job)
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if sys.argv[1:2] == ["--child"]:
        child_main(sys.argv[1:])
        return
    args = parse_args()
    systems = [s for s in args.systems.split(",") if s]
    unknown = sorted(set(systems) - set(CHILDREN))
    if unknown:
        sys.exit(f"unknown systems {unknown}; choose from {','.join(CHILDREN)}")
    device = tp.resolve_device(args.device)
    precision = tp.resolve_precision(args.precision, device)
    spec = tp.resolve_model(args.model, model_dir=args.model_dir)
    with contextlib.ExitStack() as stack:
        work = Path(args.keep or stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        data = write_data(args, work)
        model_dir = tp.materialize(spec, work / "model")
        sizes = data["sizes"]
        eval_every = args.eval_every or max(32, min(4000, sizes["train"] // 4))
        print(
            f"GMB (nerlit's fixed split): {sizes['train']} train sentences (--subset "
            f"{args.subset or 'all'}), {sizes['dev']} dev, {sizes['test']} test; model "
            f"{spec['label']}; target 5-type dev F1 {args.target} "
            f"({', '.join(REFERENCE_TYPES)}); evaluation every {eval_every} training "
            f"sentences; at most {args.max_seconds:.0f} s a run; {args.seeds} seed(s); "
            f"{precision} on {device}",
            flush=True,
        )
        if "flair" in systems:
            print(f"flair runs in its own virtualenv: {tp.flair_versions(tp.flair_python())}")
        runs: dict[str, list[dict]] = {s: [] for s in systems}
        for seed in range(1, args.seeds + 1):
            for system in systems:
                job = make_job(args, data["paths"], work / f"{system}-{seed}", seed)
                job.update(device=device, precision=precision, eval_every=eval_every)
                job["model"] = {"dir": model_dir, "materialized": model_dir != spec["location"]}
                job["nerlit_preset"] = spec["preset"] or "minilm"
                Path(job["workdir"]).mkdir(parents=True, exist_ok=True)
                r = run_child(system, job, work)
                runs[system].append(r)
                print(run_line(system, seed, r), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device, "runs": runs}, indent=1))
    print("\n".join(summary_lines(runs)))


if __name__ == "__main__":
    main()

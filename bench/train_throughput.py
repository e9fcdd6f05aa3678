"""Training throughput, side by side: nerlit vs its peers at their best vs a bare PyTorch loop.

    python bench/train_throughput.py [--sentences 3000] [--steps 60] [--model DIR|PRESET]

Per-step speed at equal settings is what a framework adds to or takes from the model's own
arithmetic, so every variant trains the same encoder (MiniLM by default) on the same GMB training
sentences for the same number of optimizer steps, at the same batch size (32) and precision:

(a) ``nerlit``: ``NerModule`` + ``NerDataModule`` under Lightning's Trainer, as ``make train`` runs;
(b) ``hf``: the Hugging Face ``Trainer`` + ``AutoModelForTokenClassification`` +
    ``DataCollatorForTokenClassification`` with run_ner.py's preprocessing (first subword
    labelled) and the Trainer's defaults otherwise (random batches; its default optimizer is
    already the fused AdamW);
(c) ``hf-grouped``: the same Trainer as a well-informed user configures it: length-grouped
    batches (``train_sampling_strategy="group_by_length"``, transformers 5), ``--workers``
    data-loader workers, and ``torch_compile`` with ``--hf-compile`` (off by default: on the
    2-core CPU it compiled for 88 s and then trained slower than eager, docs/results.md);
(d) ``flair``: Flair's ``SequenceTagger`` fine-tuning the same encoder through
    ``TransformerWordEmbeddings(fine_tune=True)`` (Flair's own NER example: last layer,
    first-subword pooling, no CRF, no RNN) under ``ModelTrainer.fine_tune``, given the fused
    AdamW and autocast (``use_amp``) so it is not slower for want of a switch. Flair 0.15 needs
    transformers < 5, which nerlit's environment cannot hold, so it runs in its own virtualenv
    (``bench/.flair-venv``, git-ignored, built on first use with ``pip install -c
    constraints.txt``; ``NERLIT_FLAIR_VENV`` moves it) on the same sentences written to a
    CoNLL column file;
(e) ``bare``: a plain PyTorch loop over nerlit's own batches and network, the floor for (a).

Each variant runs in a fresh subprocess (so peak memory is its own) and times the steps after
``--warmup`` steps. Throughput is words/s (what a user's corpus is measured in; the ratios use
it) and subword tokens/s (padding excluded, [CLS]/[SEP] included, counted with the same
tokenizer for every variant). The share of the peak is each variant's model FLOP/s
(6 x non-embedding parameters + attention, per token) over a large matmul's FLOP/s in the
training precision, measured in the same run on the same device; both peaks are printed.

``--precision auto`` (the default) trains in bf16 autocast where the device multiplies bf16
natively and in fp32 where it does not: a CPU without AVX512-BF16/AMX emulates bf16 about 50x
slower than fp32, which would measure the emulation, not the frameworks. ``--device cuda`` runs
everything on the GPU and reports GPU memory; without CUDA it says so and runs on the CPU.
``--model`` takes a folder or a nerlit preset (``tiny`` for tests; ``bert-base --from-scratch
--model-dir DIR`` for BERT-base shapes from a config+tokenizer folder). The last line is exactly

    speedup_vs_hf_best=X.XX speedup_vs_flair=Y.YY overhead_vs_bare=Z.ZZ peak_share=W.WW

(nerlit's words/s over the faster of ``hf``/``hf-grouped``, over Flair's; the bare loop's words/s
over nerlit's; nerlit's share of the peak). A ratio whose variant was not run reads ``nan``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import itertools
import json
import math
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
MODELS_DIR = Path(os.environ.get("NERLIT_MODELS_DIR", SHARED / "models"))
DEFAULT_MODEL = MODELS_DIR / "all-MiniLM-L6-v2"
GMB = Path(os.environ.get("NERLIT_DATA_DIR", SHARED / "data")) / "gmb" / "ner_dataset.csv.gz"
#: Flair's own environment: Flair 0.15 pins transformers < 5, nerlit's environment has 5
FLAIR_VENV = Path(os.environ.get("NERLIT_FLAIR_VENV", REPO / "bench" / ".flair-venv"))
#: what that environment holds besides torch (kept at 2.13.0 by constraints.txt); seqeval lets
#: the time-to-accuracy benchmark score Flair with nerlit's own scorer
FLAIR_PACKAGES = ("flair==0.15.1", "seqeval==1.2.2")
VARIANT_NAMES = ("nerlit", "hf", "hf-grouped", "flair", "bare")
#: also runnable: nerlit with its GPU preset's batches and learning rate (trainer=gpu)
EXTRA_VARIANTS = ("nerlit-preset",)


def gmb_corpus():
    """nerlit's fixed GMB split (seed 42: 38,367 / 4,796 / 4,796 sentences)."""
    from nerlit.data.corpus import load_corpus

    corpus, _ = load_corpus(GMB, format="gmb", encoding="cp1252", scheme="iob2")
    return corpus


def gmb_sentences(n: int):
    """The first ``n`` sentences of nerlit's fixed GMB train split (seed 42), and its labels."""
    corpus = gmb_corpus()
    return corpus.train[:n], corpus.labels()


# -- the model: a directory, or one of nerlit's presets (conf/model/) --------------------------


def resolve_model(spec: str, from_scratch: bool = False, model_dir: str | None = None) -> dict:
    """Where the encoder is and how to build it, from a directory or a nerlit preset name.

    A preset (``tiny``, ``minilm``, ``bert-base`` ...) gives its config overrides and whether it
    is random-init, so ``--model tiny`` is the test suite's tiny BERT and ``--model bert-base
    --from-scratch --model-dir DIR`` is BERT-base's shapes from a config+tokenizer folder.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        location, overrides, scratch, preset = str(path.resolve()), {}, from_scratch, None
    else:
        from hydra import compose, initialize_config_dir
        from omegaconf import OmegaConf

        from nerlit.config import CONFIG_DIR
        from nerlit.models.pretrained import resolve_pretrained

        with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
            cfg = compose("train.yaml", overrides=[f"model={spec}"])
        model = cfg.model
        if model_dir:
            location = str(Path(model_dir).expanduser().resolve())
        else:
            location = resolve_pretrained(
                model.name, model.pretrained, cfg.paths.models_dir
            ).location
        overrides = OmegaConf.to_container(model.config_overrides, resolve=True) or {}
        scratch, preset = from_scratch or bool(model.from_scratch), spec
    return {
        "location": location,
        "from_scratch": scratch,
        "overrides": overrides,
        "preset": preset,
        "label": (preset or Path(location).name) + (" (random init)" if scratch else ""),
    }


def encoder_config(spec: dict):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(spec["location"], **spec["overrides"])


def materialize(spec: dict, directory: Path) -> str:
    """A folder any transformers version loads: the encoder's weights (random-init ones for a
    from-scratch spec) with its tokenizer; for a plain pretrained spec, its own folder.

    Flair only loads encoders from folders, and runs a different transformers version.
    """
    if not spec["from_scratch"] and not spec["overrides"]:
        return spec["location"]
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    config = encoder_config(spec)
    model = AutoModel.from_config(config) if spec["from_scratch"] else None
    if model is None:
        model = AutoModel.from_pretrained(spec["location"], config=config)
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(spec["location"]).save_pretrained(directory)
    return str(directory)


def resolve_device(name: str) -> str:
    """``cpu``, ``cuda`` or ``auto``; asking for CUDA without it falls back to the CPU, loudly."""
    available = torch.cuda.is_available()
    if name == "auto":
        return "cuda" if available else "cpu"
    if name == "cuda" and not available:
        print(
            "WARNING: --device cuda but torch sees no CUDA device "
            f"(torch {torch.__version__}): running on the CPU",
            file=sys.stderr,
            flush=True,
        )
        return "cpu"
    return name


def resolve_precision(precision: str, device: str) -> str:
    """``auto``: bf16 autocast where the device multiplies bf16 natively, else fp32.

    A CPU without AVX512-BF16/AMX emulates bf16 matmuls: a MiniLM training step then takes
    about 50x longer than in fp32 (25 s against 0.5 s on such a 2-core EPYC), which would
    measure the emulation, not the frameworks. A 256 x 256 probe of each dtype decides.
    """
    if precision != "auto":
        return precision
    if device == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    operands = {
        dtype: torch.randn(256, 256, dtype=dtype) for dtype in (torch.bfloat16, torch.float32)
    }
    best = dict.fromkeys(operands, math.inf)
    for _ in range(5):  # interleaved, best of five: a busy machine slows single timings
        for dtype, a in operands.items():
            start = time.perf_counter()
            a @ a
            best[dtype] = min(best[dtype], time.perf_counter() - start)
    return "bf16-mixed" if best[torch.bfloat16] <= 2 * best[torch.float32] else "32-true"


def die_with_parent() -> None:
    """A child process ends when the benchmark does (a timeout kills the parent alone)."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def autocast(device: str, precision: str):
    """The precision every variant trains in: bf16 autocast, or none."""
    if precision == "bf16-mixed":
        return torch.autocast(device, dtype=torch.bfloat16)
    if precision == "32-true":
        return contextlib.nullcontext()
    raise SystemExit(f"--precision {precision!r}: use bf16-mixed or 32-true")


class StepClock:
    """Times optimizer steps after a warmup and sums the words/tokens of the timed batches.

    The device is synchronised only when the timed window opens and after the last step, so
    the clock adds no host sync inside it (on a GPU a per-step sync would hide exactly the
    host overhead this benchmark compares). Counts may be device tensors: summed lazily.
    """

    def __init__(self, warmup: int, total: int, device: str = "cpu") -> None:
        self.warmup, self.total, self.device = warmup, total, device
        self.step, self.start, self.end, self.first = 0, None, None, None
        self.words = self.tokens = self.windows = 0

    def begin(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        if self.step == self.warmup:
            synchronize(self.device)
            self.start = time.perf_counter()

    def finish(self, words, tokens, windows: int = 0) -> None:
        if self.step >= self.warmup:
            self.words = self.words + words
            self.tokens = self.tokens + tokens
            self.windows = self.windows + windows
            if self.step + 1 >= self.total:
                synchronize(self.device)
            self.end = time.perf_counter()
        self.step += 1

    def result(self) -> dict:
        if self.start is None or self.end is None:
            raise RuntimeError(f"only {self.step} steps ran: fewer than --warmup + 1")
        seconds = self.end - self.start
        words, tokens = int(self.words), int(self.tokens)
        return {
            "seconds": seconds,
            "warmup_seconds": self.start - self.first,
            "steps": self.step - self.warmup,
            "words": words,
            "tokens": tokens,
            "windows": int(self.windows),
            "words_per_s": words / seconds,
            "tokens_per_s": tokens / seconds,
        }


# -- (a) nerlit and (e) the bare loop ------------------------------------------------------------


def gpu_preset() -> dict:
    """The data and optimizer settings of nerlit's GPU preset (``trainer=gpu``)."""
    from hydra import compose, initialize_config_dir

    from nerlit.config import CONFIG_DIR

    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("train.yaml", overrides=["trainer=gpu"])
    keys = ("max_tokens", "batch_size", "eval_batch_size", "pad_to_multiple_of", "num_workers")
    return {**{k: cfg.data[k] for k in keys}, "lr": cfg.optimizer.lr}


def _nerlit_parts(args, tmp: Path, preset: bool = False):
    """nerlit's DataModule and module for the benchmark sentences, built as train.py builds them
    (``preset``: with the GPU preset's batches, workers and learning rate)."""
    from nerlit.data.datamodule import NerDataModule
    from nerlit.evaluation.metrics import entity_scores
    from nerlit.models.module import NerModule
    from nerlit.models.optim import adamw, linear_warmup
    from nerlit.models.pretrained import load_tokenizer

    spec = args.resolved
    sentences, _ = gmb_sentences(args.sentences)
    path = tmp / "train.jsonl"
    path.write_text("\n".join(json.dumps({"tokens": s.words, "tags": s.tags}) for s in sentences))
    tokenizer = load_tokenizer(spec["location"])
    batching = {
        "batch_size": args.batch_size,
        "num_workers": args.workers,
        "max_tokens": args.max_tokens,
        "pad_to_multiple_of": args.pad_to_multiple_of,
    }
    lr = 5e-5
    if preset:
        settings = gpu_preset()
        batching = {k: settings[k] for k in batching}
        lr = settings["lr"]
    datamodule = NerDataModule(
        str(path),
        str(path),
        str(path),
        format="jsonl",
        scheme="iob2",
        tokenizer=tokenizer,
        seed=0,
        length_grouping=not args.no_length_grouping,
        cache=False,  # every variant reads and tokenizes afresh
        **batching,
    )
    datamodule.device_type = args.device  # the loader is built before a Trainer is attached
    datamodule.setup()
    module = NerModule(
        datamodule.labels,
        pretrained=spec["location"],
        from_scratch=spec["from_scratch"],
        config_overrides=spec["overrides"],
        scorer=entity_scores,
        optimizer=lambda params: adamw(params, lr=lr, fused=False if args.no_fused else None),
        scheduler=lambda opt, total_steps: linear_warmup(opt, total_steps, 0.1),
        attention=args.attention,
        compile=args.compile,
    )
    return datamodule, module


def run_nerlit(args, tmp: Path, preset: bool = False) -> dict:
    import lightning as L

    datamodule, module = _nerlit_parts(args, tmp, preset)
    clock = StepClock(args.warmup, args.steps, args.device)

    class Clock(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            clock.begin()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            clock.finish(batch["num_words"], batch["num_tokens"], batch["input_ids"].size(0))

    trainer = L.Trainer(
        accelerator="gpu" if args.device == "cuda" else "cpu",
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
    """nerlit's batches and network in a plain loop: what the framework around them costs."""
    from nerlit.models.optim import adamw, linear_warmup, parameter_groups

    datamodule, module = _nerlit_parts(args, tmp)
    module.setup("fit")  # model.compile, as Lightning would call it
    module.to(args.device).train()
    optimizer = adamw(parameter_groups(module), lr=5e-5)
    scheduler = linear_warmup(optimizer, args.steps, 0.1)
    clock = StepClock(args.warmup, args.steps, args.device)
    loader = datamodule.train_dataloader()
    keys = ("input_ids", "attention_mask", "labels", "casing_ids")

    def epochs():
        for epoch in itertools.count():
            loader.batch_sampler.set_epoch(epoch)
            yield from loader

    for _, batch in zip(range(args.steps), epochs()):
        clock.begin()
        inputs = {k: batch[k].to(args.device, non_blocking=True) for k in keys if k in batch}
        with autocast(args.device, args.precision):
            logits = module._batch_logits(inputs)
            loss = module.network.loss(logits, inputs["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        clock.finish(batch["num_words"], batch["num_tokens"], batch["input_ids"].size(0))
    return clock.result()


# -- (b), (c) the Hugging Face Trainer -----------------------------------------------------------


def hf_features(sentences, tokenizer, label2id: dict) -> list[dict]:
    """run_ner.py's preprocessing: split words tokenized, the first subword of each word labelled
    (-100 elsewhere), truncated at the tokenizer's limit as run_ner.py does. A label the model
    does not know (a dev/test label absent from train) is labelled 0: only its position counts.
    """
    features = []
    for words, tags in sentences:
        encoded = tokenizer(list(words), is_split_into_words=True, truncation=True)
        previous, aligned = None, []
        for word in encoded.word_ids():
            first = word is not None and word != previous
            aligned.append(label2id.get(tags[word], 0) if first else -100)
            previous = word
        features.append({**encoded, "labels": aligned})
    return features


def counting_collator(tokenizer):
    """DataCollatorForTokenClassification, plus the batch's word and token counts as ints.

    The counts ride in the batch (data-loader workers collate in other processes) and are
    popped before the model sees it (``CountingTrainer``); ints, so no device sync reads them.
    """
    from transformers import DataCollatorForTokenClassification

    collate = DataCollatorForTokenClassification(tokenizer)

    def collator(rows):
        batch = dict(collate(rows))
        batch["num_words"] = int((batch["labels"] != -100).sum())
        batch["num_tokens"] = int(batch["attention_mask"].sum())
        return batch

    return collator


def run_hf(args, tmp: Path, grouped: bool = False) -> dict:
    """The Trainer with its defaults, or (``grouped``) with what a well-informed user adds."""
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    spec = args.resolved
    sentences, labels = gmb_sentences(args.sentences)
    label2id = {label: i for i, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(spec["location"])
    features = hf_features([(s.words, s.tags) for s in sentences], tokenizer, label2id)
    config = encoder_config(spec)
    config.num_labels, config.id2label, config.label2id = (
        len(labels),
        dict(enumerate(labels)),
        label2id,
    )
    if spec["from_scratch"]:
        model = AutoModelForTokenClassification.from_config(config)
    else:
        model = AutoModelForTokenClassification.from_pretrained(spec["location"], config=config)
    clock = StepClock(args.warmup, args.steps, args.device)
    pending: list[tuple[int, int]] = []

    class CountingTrainer(Trainer):
        def compute_loss(self, model, inputs, *rest, **kwargs):
            pending.append((inputs.pop("num_words"), inputs.pop("num_tokens")))
            return super().compute_loss(model, inputs, *rest, **kwargs)

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            clock.begin()

        def on_step_end(self, *a, **k):
            words, tokens = pending.pop()
            clock.finish(words, tokens)

    extra = {}
    if grouped:
        extra = {
            "train_sampling_strategy": "group_by_length",
            "dataloader_num_workers": args.workers,
            "dataloader_persistent_workers": args.workers > 0,
            "torch_compile": args.hf_compile,
        }
    training_args = TrainingArguments(
        output_dir=str(tmp / "hf"),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=5e-5,
        warmup_steps=0.1,  # a float below 1: a ratio of all steps (transformers 5)
        bf16=args.precision == "bf16-mixed",
        use_cpu=args.device == "cpu",
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        remove_unused_columns=False,  # keep the counts; the Trainer would drop unknown keys
        seed=0,
        **extra,
    )
    trainer = CountingTrainer(
        model=model,
        args=training_args,
        train_dataset=features,
        data_collator=counting_collator(tokenizer),
        processing_class=tokenizer,
        callbacks=[Clock()],
    )
    trainer.train()
    return clock.result()


def run_hf_grouped(args, tmp: Path) -> dict:
    return run_hf(args, tmp, grouped=True)


# -- (d) Flair, in its own environment -----------------------------------------------------------


def flair_python() -> Path:
    """Flair's interpreter, building its virtualenv on first use (once: about 3 minutes, 1.5 GB).

    Flair 0.15 requires transformers < 5 and nerlit's environment has 5, so Flair cannot share
    it. torch stays exactly what constraints.txt pins (a looser spec pulls GB of CUDA wheels on a
    CPU machine). A lock makes concurrent first uses wait for one build.
    """
    python = FLAIR_VENV / "bin" / "python"
    marker = FLAIR_VENV / ".installed"
    wanted = " ".join(FLAIR_PACKAGES)
    FLAIR_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(FLAIR_VENV.parent / ".flair-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and marker.read_text() == wanted and python.exists():
            return python
        print(
            f"Flair needs transformers<5 (nerlit's environment has 5): building its own "
            f"virtualenv at {FLAIR_VENV} ({wanted}, torch from constraints.txt), once",
            flush=True,
        )
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--clear", str(FLAIR_VENV)], check=True)
        install = [str(python), "-m", "pip", "install", "-q", "-c", str(REPO / "constraints.txt")]
        done = subprocess.run([*install, *FLAIR_PACKAGES], capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"installing Flair into {FLAIR_VENV} failed:\n{done.stderr[-3000:]}")
        marker.write_text(wanted)
    return python


def flair_versions(python: Path) -> str:
    probe = (
        "import flair, transformers, torch; "
        "print(flair.__version__, transformers.__version__, torch.__version__)"
    )
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True)
    flair_v, transformers_v, torch_v = out.stdout.split()
    return f"flair {flair_v}, transformers {transformers_v}, torch {torch_v}"


def write_columns(path: Path, sentences) -> Path:
    """(words, tags) pairs as a two-column CoNLL file (tab-separated): what Flair reads."""
    lines = []
    for words, tags in sentences:
        lines.extend(f"{w}\t{t}" for w, t in zip(words, tags))
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def flair_corpus(train: Path, dev: Path | None = None, test: Path | None = None):
    """A ColumnCorpus of our files, nothing sampled or found beside them."""
    from flair.datasets import ColumnCorpus

    return ColumnCorpus(
        train.parent,
        {0: "text", 1: "ner"},
        train_file=train.name,
        dev_file=dev.name if dev else None,
        test_file=test.name if test else None,
        autofind_splits=False,
        column_delimiter="\t",
        comment_symbol=None,
        sample_missing_splits=False,
    )


def flair_tagger(corpus, model_dir: str):
    """Flair's own recipe for fine-tuning a transformer for NER (examples/ner/run_ner.py)."""
    from flair.embeddings import TransformerWordEmbeddings
    from flair.models import SequenceTagger

    labels = corpus.make_label_dictionary("ner", add_unk=False)
    embeddings = TransformerWordEmbeddings(
        model=model_dir, layers="-1", subtoken_pooling="first", fine_tune=True, use_context=False
    )
    return SequenceTagger(
        hidden_size=256,
        embeddings=embeddings,
        tag_dictionary=labels,
        tag_type="ner",
        use_crf=False,
        use_rnn=False,
        reproject_embeddings=False,
    )


def flair_setup(device: str, precision: str) -> bool:
    """Point Flair at the device; returns whether to train with ``use_amp`` (autocast).

    Flair's ``use_amp`` autocasts to the device's default dtype: bf16 on the CPU, fp16 (with a
    grad scaler) on CUDA, where we make the default bf16 so every variant runs in bf16.
    """
    import flair

    flair.device = torch.device(device)
    amp = precision == "bf16-mixed"
    if amp and device == "cuda":
        torch.set_autocast_dtype("cuda", torch.bfloat16)
    return amp


def flair_optimizer_kwargs(device: str) -> dict:
    """Flair's example trains without weight decay; fused AdamW where torch has it (for speed)."""
    kwargs = {"weight_decay": 0.0}
    try:
        torch.optim.AdamW([torch.zeros(1, device=device, requires_grad=True)], fused=True)
        kwargs["fused"] = True
    except (RuntimeError, ValueError):
        pass
    return kwargs


def run_flair(args, tmp: Path) -> dict:
    """Runs in Flair's virtualenv: ``ModelTrainer.fine_tune`` for ``--steps`` batches."""
    from flair.trainers import ModelTrainer
    from flair.trainers.plugins import TrainerPlugin
    from transformers import AutoTokenizer

    amp = flair_setup(args.device, args.precision)
    corpus = flair_corpus(Path(args.flair_data))
    tagger = flair_tagger(corpus, args.model)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    sizes = {}
    for sentence in corpus.train:
        words = [token.text for token in sentence]
        tokens = len(tokenizer(words, is_split_into_words=True)["input_ids"])
        sizes[id(sentence)] = (len(words), tokens)
    clock = StepClock(args.warmup, args.steps, args.device)

    class Done(Exception):
        """Raised after the last timed step: Flair's loop has no max_steps."""

    class Clock(TrainerPlugin):
        @TrainerPlugin.hook
        def before_training_batch(self, **kwargs):
            clock.begin()

        @TrainerPlugin.hook
        def after_training_batch(self, batch, **kwargs):
            counts = [sizes[id(s)] for s in batch]
            clock.finish(sum(c[0] for c in counts), sum(c[1] for c in counts))
            if clock.step >= args.steps:
                raise Done

    epochs = math.ceil(args.steps * args.batch_size / len(corpus.train)) + 1
    with contextlib.suppress(Done):
        ModelTrainer(tagger, corpus).fine_tune(
            tmp / "flair",
            learning_rate=5e-5,
            mini_batch_size=args.batch_size,
            max_epochs=epochs,
            use_amp=amp,
            plugins=[Clock()],
            save_final_model=False,
            create_file_logs=False,
            create_loss_file=False,
            **flair_optimizer_kwargs(args.device),
        )
    return clock.result()


# -- the machine's peak and the model's arithmetic -----------------------------------------------


def matmul_peak(device: str = "cpu", dtype=torch.bfloat16, trials: int = 3) -> float:
    """The device's practical peak: FLOP/s of a large matmul (all threads on a CPU).

    The best of ``trials`` timings: one timing alone once read half the usual figure when
    something else briefly held a core, which made the efficiency ratio look twice as good. The
    size shrinks where a probe shows the dtype is emulated (bf16 on a CPU without AVX512-BF16 or
    AMX runs at a few GFLOP/s: a 2048 product would take minutes), so the figure always comes
    back in seconds.
    """
    size = 8192 if device == "cuda" else 2048
    probe = 256
    a = torch.randn(probe, probe, dtype=dtype, device=device)
    a @ a
    synchronize(device)
    start = time.perf_counter()
    a @ a
    synchronize(device)
    rate = 2 * probe**3 / max(time.perf_counter() - start, 1e-9)
    if device != "cuda" and rate < 20e9:
        size = 512
    repeats = max(1, min(20, int(0.3 * rate / (2 * size**3))))
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    a @ b
    synchronize(device)
    best = 0.0
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - start))
    return best


def training_flops_per_token(config, mean_tokens: float) -> float:
    """6 x non-embedding parameters, plus attention scores/values (12 x layers x d x sequence)."""
    d, layers, inner = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    params = layers * (4 * d * d + 2 * d * inner)
    return 6 * params + 12 * layers * d * mean_tokens


#: the matmul dtype whose peak each --precision is measured against
PEAK_DTYPES = {"bf16-mixed": torch.bfloat16, "32-true": torch.float32}

VARIANTS = {
    "nerlit": run_nerlit,
    "nerlit-preset": lambda args, tmp: run_nerlit(args, tmp, preset=True),
    "hf": run_hf,
    "hf-grouped": run_hf_grouped,
    "flair": run_flair,
    "bare": run_bare,
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sentences", type=int, default=3000, help="GMB train sentences used")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per variant")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--model",
        default=str(DEFAULT_MODEL),
        help="an encoder folder, or a nerlit model preset (tiny, minilm, bert-base, ...)",
    )
    parser.add_argument("--from-scratch", action="store_true", help="random-init encoder")
    parser.add_argument("--model-dir", help="a preset's folder (config + tokenizer [+ weights])")
    parser.add_argument("--variants", default=",".join(VARIANT_NAMES))
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument(
        "--precision",
        default="auto",
        help="every variant: bf16-mixed, 32-true, or auto (bf16 where the device has it natively)",
    )
    parser.add_argument("--workers", type=int, default=0, help="loader workers: nerlit, hf-grouped")
    parser.add_argument("--hf-compile", action="store_true", help="hf-grouped: torch_compile=True")
    # ablation of nerlit's speed work: each switch turns one item off (the nerlit variant only)
    parser.add_argument("--no-length-grouping", action="store_true")
    parser.add_argument("--no-fused", action="store_true")
    # and two candidates that are off by default (nerlit and the bare loop)
    parser.add_argument(
        "--max-tokens", type=int, default=None, help="token-budget batches (data.max_tokens)"
    )
    parser.add_argument(
        "--compile",
        nargs="?",
        const="default",
        default=None,
        help="model.compile: a torch.compile mode for nerlit and the bare loop (default, "
        "reduce-overhead, ...); compiling falls in the untimed warmup",
    )
    parser.add_argument("--attention", default="auto", help="model.attention (nerlit, bare)")
    parser.add_argument(
        "--pad-to-multiple-of",
        type=lambda v: None if v == "null" else v if v == "auto" else int(v),
        default="auto",
        help="data.pad_to_multiple_of (nerlit, bare): auto, null or a number",
    )
    parser.add_argument("--json", help="also write every variant's figures to this JSON file")
    parser.add_argument("--run", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--resolved", type=json.loads, help=argparse.SUPPRESS)
    parser.add_argument("--flair-data", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def peak_memory(device: str) -> dict:
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def run_variant(name: str, args, spec: dict, work: Path) -> dict:
    """One variant in a fresh process; Flair's in its own environment."""
    command = [sys.executable, __file__, *sys.argv[1:]]
    command += ["--run", name, "--resolved", json.dumps(spec), "--device", args.device]
    command += ["--precision", args.precision]
    if name == "flair":
        python = flair_python()
        print(f"  flair runs in its own virtualenv {FLAIR_VENV}: {flair_versions(python)}")
        data = work / "flair" / "train.txt"
        data.parent.mkdir(exist_ok=True)
        sentences, _ = gmb_sentences(args.sentences)
        write_columns(data, [(s.words, s.tags) for s in sentences])
        model = materialize(spec, work / "flair-model")
        command[0] = str(python)
        command += ["--flair-data", str(data), "--model", model]
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, preexec_fn=die_with_parent
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"variant {name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(line[len("RESULT ") :])


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "nan"


def add_peak_share(result: dict, config, peak: float, batch_size: int) -> dict:
    """The variant's model FLOP/s over the measured peak (mean sequence length of its batches)."""
    windows = result.get("windows") or result["steps"] * batch_size
    mean_tokens = result["tokens"] / windows
    flops = training_flops_per_token(config, mean_tokens) * result["tokens_per_s"]
    result["peak_share"] = flops / peak
    return result


def variant_line(name: str, r: dict, peak_label: str) -> str:
    memory = f"peak RSS {r['peak_rss_mb']:.0f} MB"
    if "peak_gpu_mb" in r:
        memory += f", peak GPU {r['peak_gpu_mb']:.0f} MB"
    return (
        f"{name:>10}: {r['words_per_s']:9.1f} words/s {r['tokens_per_s']:9.1f} tokens/s "
        f"over {r['steps']} steps ({r['seconds']:.1f} s, after {r['warmup_seconds']:.1f} s of "
        f"warmup steps); {memory}; "
        f"{r['peak_share']:.1%} of the {peak_label} peak"
    )


def summary_lines(results: dict[str, dict]) -> list[str]:
    """nerlit's ratio to each peer, then the one machine-readable last line."""
    speed = {name: r["words_per_s"] for name, r in results.items()}
    nerlit = speed.get("nerlit")
    lines = []
    if nerlit:
        lines += [
            f"nerlit / {n}: {nerlit / v:.2f}x words/s" for n, v in speed.items() if n != "nerlit"
        ]
    hf_best = max((speed[n] for n in ("hf", "hf-grouped") if n in speed), default=None)
    share = results["nerlit"]["peak_share"] if "nerlit" in results else None
    lines.append(
        f"speedup_vs_hf_best={ratio(nerlit, hf_best)} "
        f"speedup_vs_flair={ratio(nerlit, speed.get('flair'))} "
        f"overhead_vs_bare={ratio(speed.get('bare'), nerlit)} "
        f"peak_share={f'{share:.2f}' if share is not None else 'nan'}"
    )
    return lines


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args.device = resolve_device(args.device)
    args.precision = resolve_precision(args.precision, args.device)
    torch.manual_seed(0)

    if args.run:  # child process: one variant, one JSON line
        with tempfile.TemporaryDirectory() as tmp:
            result = VARIANTS[args.run](args, Path(tmp))
        result.update(peak_memory(args.device))
        print("RESULT " + json.dumps(result), flush=True)
        return

    names = [n for n in args.variants.split(",") if n]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        sys.exit(f"unknown variants {unknown}; choose from {','.join(VARIANTS)}")
    spec = resolve_model(args.model, args.from_scratch, args.model_dir)
    config = encoder_config(spec)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(
        f"model {spec['label']} ({spec['location']}); {args.sentences} GMB sentences, "
        f"{args.steps} steps ({args.warmup} untimed), batch {args.batch_size}, "
        f"{args.precision}, device {args.device} ({device_name}), torch {torch.__version__}",
        flush=True,
    )
    peaks = {p: matmul_peak(args.device, d) for p, d in PEAK_DTYPES.items()}
    peak_label = "bf16" if args.precision == "bf16-mixed" else "fp32"
    peak = peaks[args.precision]
    print(
        f"matmul peak ({device_name}): bf16 {peaks['bf16-mixed'] / 1e9:.1f} GFLOP/s, "
        f"fp32 {peaks['32-true'] / 1e9:.1f} GFLOP/s",
        flush=True,
    )
    if args.precision == "32-true" and peaks["bf16-mixed"] < peaks["32-true"]:
        print("fp32: this device has no native bf16 matmul (bf16 autocast would be emulated)")
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for name in names:
            result = run_variant(name, args, spec, Path(work))
            results[name] = add_peak_share(result, config, peak, args.batch_size)
            print(variant_line(name, results[name], peak_label), flush=True)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"device": device_name, "precision": args.precision, "peak": peak,
                        "batch_size": args.batch_size, "model": spec["label"],
                        "results": results}, indent=1)
        )  # fmt: skip
    print("\n".join(summary_lines(results)))


if __name__ == "__main__":
    main()

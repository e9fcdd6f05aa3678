"""The model card (``README.md``) every export gets, built with ``huggingface_hub``'s ``ModelCard``.

An exported folder travels without its run folder, and may be pushed to the Hub, so the card
carries what a user needs to judge and load the model: metadata the Hub reads (``license``,
``language``, ``datasets``, ``base_model``, ``model-index`` with this model's own scores as
``EvalResult``s), the per-type test table, the labels, the training data, how far training got,
the hyperparameters, how to load it and what it cannot do.

Everything stated comes from this model: its checkpoint (hyperparameters, data record, and
Lightning's step and epoch counters, :func:`nerlit.models.checkpoint.training_progress`) and,
when the checkpoint still sits in its run folder, that folder's files. The run's test scores
(``metrics.json``) are shown only when the run tested this very checkpoint; a configured limit
(``max_epochs``) is never passed off as what was trained, and no benchmark figure of other
models appears. What no checkpoint records (license, language, the Hub id) comes from
:class:`CardMetadata`. File names are shown without their local directories.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from nerlit.data.schemes import split_tag

log = logging.getLogger(__name__)

CARD = "README.md"
#: data configs that name an input format, not a corpus: no dataset name can come from them
FORMAT_CONFIGS = ("conll", "jsonl", "hf")
#: the language of the corpora nerlit ships configs for (``conf/data``)
CORPUS_LANGUAGES = {"gmb": "en", "conll2003": "en"}
TASK = ("token-classification", "Named Entity Recognition")


@dataclass(frozen=True)
class CardMetadata:
    """What a card states that no checkpoint records, chosen at export (``conf/export.yaml``).

    ``license``: a Hub license id (``mit``, ``apache-2.0``, ``cc-by-4.0``, ``other``...);
    ``unknown`` until someone states the terms of the model and of its training data.
    ``language``: ISO 639 code(s) of the training texts; None takes the corpus's own where
    nerlit knows it (:data:`CORPUS_LANGUAGES`), else leaves it out. ``repo_id``: the Hub id the
    export is pushed to; it names the model and goes into the loading examples.
    """

    license: str = "unknown"
    language: str | list[str] | None = None
    repo_id: str | None = None


def _run_folder(source: str) -> Path | None:
    """The run folder of a checkpoint at ``<run>/checkpoints/x.ckpt``, if it is there."""
    path = Path(source)
    if path.is_file() and path.parent.name == "checkpoints":
        return path.parent.parent
    return None


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        log.warning("%s: unreadable, left out of the model card", path)
        return None


def _read_yaml(path: Path) -> dict | None:
    try:
        return yaml.safe_load(path.read_text()) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        log.warning("%s: unreadable, left out of the model card", path)
        return None


def _hub_id(name: str | None) -> str | None:
    """A base model name that is a hub id (``bert-base-cased``, ``org/model``), not a path."""
    if not name or name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1:
        return None
    return name


def _types(labels: list[str]) -> list[str]:
    return sorted({split_tag(label)[1] for label in labels if label != "O"})


def dataset_name(record: dict | None, run: Path | None) -> str | None:
    """The training corpus's name: ``data.name``, else the data config chosen (``data=gmb``).

    A corpus without ``data.name`` is named after its train file in the data record
    (``train.txt`` -> ``train``), which names no dataset: that is never returned. The run's
    ``config.yaml`` says whether ``data.name`` was set; without it, a recorded name equal to the
    train file's stem counts as taken from the file.
    """
    run_config = _read_yaml(run / "config.yaml") if run else None
    if run_config is not None:
        given = (run_config.get("data") or {}).get("name")
        if given:
            return str(given)
    else:
        config = (record or {}).get("config") or {}
        name, train = config.get("name"), config.get("train_file")
        if name and not (train and name == Path(train).stem):
            return str(name)
    hydra = _read_yaml(run / ".hydra" / "hydra.yaml") if run else None
    choices = (((hydra or {}).get("hydra") or {}).get("runtime") or {}).get("choices") or {}
    choice = choices.get("data")
    if choice and choice not in FORMAT_CONFIGS:
        return str(choice)
    return None


def _best_val_f1(run: Path | None, source: str) -> float | None:
    """The run's best validation F1, if this checkpoint is the run's best one (a weights-only
    best checkpoint keeps no callback state to read its score from)."""
    summary = (_read_json(run / "summary.json") if run else None) or {}
    best, score = summary.get("best_checkpoint"), summary.get("best_val_f1")
    if best and score is not None and Path(str(best)).name == Path(source).name:
        return float(score)
    return None


def _tested_scores(run: Path | None, source: str) -> tuple[dict | None, str]:
    """The run's test scores if the run tested this checkpoint, else (None, why not)."""
    scores = _read_json(run / "metrics.json") if run else None
    if not scores or "micro" not in scores:
        return None, "the checkpoint's run folder has no test scores (`metrics.json`)"
    summary = _read_json(run / "summary.json") or {}
    tested = scores.get("checkpoint") or summary.get("best_checkpoint")
    if not tested or Path(str(tested)).name != Path(source).name:
        which = f"`{Path(str(tested)).name}`" if tested else "a checkpoint it did not record"
        return None, f"the run tested {which}, not this checkpoint (`{Path(source).name}`)"
    return scores, ""


def _score_rows(scores: dict) -> list[tuple[str, dict, list | None]]:
    intervals = scores.get("f1_ci") or {}
    per_type = intervals.get("per_type") or {}
    rows = [(name, row, per_type.get(name)) for name, row in scores.get("per_type", {}).items()]
    rows += [
        (f"{key} avg", scores[key], intervals.get(key))
        for key in ("micro", "macro", "weighted")
        if key in scores
    ]
    if "reference" in scores:
        types = ", ".join(scores["reference"]["types"])
        rows.append((f"micro avg ({types})", scores["reference"], intervals.get("reference")))
    return rows


def _scores_table(scores: dict) -> str:
    with_ci = bool(scores.get("f1_ci"))
    header = "| type | precision | recall | f1 |" + (" f1 95% CI |" if with_ci else "")
    lines = [header + " support |", "|---|---:|---:|---:|" + ("---:|" if with_ci else "") + "---:|"]
    for name, row, ci in _score_rows(scores):
        cells = [f"{row.get(k, 0.0):.4f}" for k in ("precision", "recall", "f1")]
        if with_ci:
            cells.append(f"{ci[0]:.4f}-{ci[1]:.4f}" if ci else "")
        lines.append(f"| {name} | {' | '.join(cells)} | {row.get('support', '')} |")
    return "\n".join(lines)


def _eval_results(dataset: str | None, test: dict | None, val_f1: float | None) -> list:
    """This model's scores as the Hub's ``EvalResult``s: test (micro P/R/F1), validation F1."""
    data = {"dataset_type": dataset or "custom", "dataset_name": dataset or "custom corpus"}
    task = {"task_type": TASK[0], "task_name": TASK[1]}
    results = []
    if test:
        mode = test.get("mode", "strict")
        results += [
            EvalResult(
                **task,
                **data,
                dataset_split="test",
                metric_type=key,
                metric_value=round(float(test["micro"][key]), 4),
                metric_name=f"Test {key} (entity, micro, {mode})",
            )
            for key in ("f1", "precision", "recall")
        ]
    if val_f1 is not None:
        results.append(
            EvalResult(
                **task,
                **data,
                dataset_split="validation",
                metric_type="f1",
                metric_value=round(val_f1, 4),
                metric_name="Validation f1 (entity, micro)",
            )
        )
    return results


def trained_for(progress: dict | None) -> str | None:
    """``4 optimizer steps (1 epoch)``: how far this checkpoint trained, from its counters."""
    if not progress:
        return None
    steps = progress.get("global_step") or 0
    text = f"{steps:,} optimizer step{'s' if steps != 1 else ''}"
    epochs, batches = progress.get("epochs"), progress.get("batches") or 0
    if epochs is None:
        return text
    span = f"{epochs} epoch{'s' if epochs != 1 else ''}"
    if batches:
        span += f" and {batches:,} batch{'es' if batches != 1 else ''} of the next"
    return f"{text} ({span})"


def _data_section(record: dict | None, dataset: str | None, language) -> str:
    if not record:
        return "Not recorded (the model was exported from a folder, not a checkpoint)."
    config = record.get("config", {})
    files = {
        split: Path(config[f"{split}_file"]).name
        for split in ("train", "val", "test")
        if config.get(f"{split}_file")
    }
    sizes = record.get("sizes", {})
    corpus = f"`{dataset}`" if dataset else "a custom corpus (unnamed: train with `data.name=NAME`)"
    lines = [f"- corpus: {corpus} ({config.get('format', '?')} format, {config.get('scheme')})"]
    if language:
        lines.append(f"- language: {', '.join(_as_list(language))}")
    lines += [f"- {split} file: `{file}`" for split, file in files.items()]
    carved = [s for s in ("val", "test") if s not in files]
    if carved:
        fractions = config.get("split_fractions")
        lines.append(
            f"- {' and '.join(carved)} carved from train: fractions {fractions}, "
            f"seed {config.get('split_seed')}"
        )
    if sizes:
        lines.append("- sentences: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    if config.get("context"):
        lines.append(f"- document context: {config['context']} subwords per side")
    return "\n".join(lines)


def _hyperparameters(hparams: dict, run_config: dict | None, progress: dict | None) -> str:
    start = hparams.get("name")
    if start and not _hub_id(start):
        start = Path(start).name  # a local folder: its name, not where it was
    if start and hparams.get("from_scratch"):
        start = f"none: random weights in {start}'s architecture"
    rows = [
        ("base model", start),
        ("head", hparams.get("head")),
        ("decode", hparams.get("decode")),
        ("case features", hparams.get("case_features")),
        ("dropout", hparams.get("dropout")),
        ("max length (subwords per window)", hparams.get("max_length") or "the encoder's"),
        ("stride", hparams.get("stride")),
        ("trained (this checkpoint)", trained_for(progress)),
    ]
    if run_config:
        optimizer = run_config.get("optimizer") or {}
        trainer = run_config.get("trainer") or {}
        data = run_config.get("data") or {}
        scheduler = run_config.get("scheduler") or {}
        rows += [
            ("optimizer", str(optimizer.get("_target_", "")).rsplit(".", 1)[-1] or None),
            ("learning rate", optimizer.get("lr")),
            ("weight decay", optimizer.get("weight_decay")),
            ("scheduler", str(scheduler.get("_target_", "")).rsplit(".", 1)[-1] or None),
            ("batch size", data.get("batch_size")),
            ("precision", trainer.get("precision")),
            ("seed", run_config.get("seed")),
        ]
    lines = ["| hyperparameter | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows if value not in (None, "")]
    return "\n".join(lines)


def _as_list(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _scores_section(
    test: dict | None, why_not: str, val_f1: float | None, quantize: str | None, where: str
) -> list[str]:
    parts = []
    if val_f1 is not None:
        parts += [
            f"Validation split, entity F1 (micro) when this checkpoint was saved: {val_f1:.4f}. "
            "The run keeps its best checkpoint by this score, so the test split says more about "
            "new text.",
            "",
        ]
    if test and "per_type" in test:
        parts += [
            f"Test split of the run, entity level, {test.get('mode', 'strict')} IOB2 spans over "
            "words (seqeval):",
            "",
            _scores_table(test),
        ]
    else:
        parts.append(
            f"No test scores: {why_not}. Score it with "
            f"`nerlit evaluate ckpt_path={where} data.test_file=FILE`."
        )
    if quantize and (test or val_f1 is not None):
        parts += [
            "",
            f"These are the checkpoint's scores in fp32; its {quantize} graph can score "
            f"differently: `nerlit evaluate ckpt_path={where} data.test_file=FILE` measures it.",
        ]
    return parts


def _usage(shown: str, format: str, pipeline_works: bool) -> list[str]:
    parts = [
        "```python",
        "from nerlit import Tagger  # pip install nerlit" + ("[onnx]" if format == "onnx" else ""),
        "",
        f'tagger = Tagger.load("{shown}")'
        + ('  # ONNX Runtime (backend="onnx")' if format == "onnx" else ""),
        'for entity in tagger.predict(["Angela Merkel visited Paris on Monday."])[0]:',
        "    print(entity.text, entity.label, entity.start, entity.end, entity.score)",
        "```",
        "",
        "`Tagger.load` takes this folder's path, or its Hub id (`ORG/NAME`), which it downloads "
        "into the Hugging Face cache (offline, `HF_HUB_OFFLINE=1`, it loads the cached copy). "
        f"`nerlit predict ckpt_path={shown} input=texts.txt output=entities.jsonl` tags a file.",
    ]
    if pipeline_works:
        parts += [
            "",
            "With transformers alone:",
            "",
            "```python",
            "from transformers import pipeline",
            "",
            f'ner = pipeline("token-classification", model="{shown}", '
            'aggregation_strategy="first")',
            'print(ner("Angela Merkel visited Paris on Monday."))',
            "```",
            "",
            '`aggregation_strategy="first"` labels each word by its first subword, the one '
            "nerlit trains on.",
        ]
    return parts


def _limitations(case_features: bool, crf: bool, format: str, quantize: str | None) -> list[str]:
    limits = [
        "- Words are split by nerlit's rule (`nerlit/data/words.py`, Penn-Treebank-like, as in "
        "the training corpora); long texts are windowed, never truncated, by `Tagger`.",
    ]
    if case_features:
        limits.append(
            "- Trained with casing features (each subword's word casing class added to its "
            "embedding): `Tagger` and the ONNX graph compute them; the transformers pipeline "
            "cannot, and runs a different, worse network."
        )
    if crf:
        limits.append(
            "- CRF head: its learned transitions (`nerlit.safetensors`) are used by `Tagger`; "
            "the transformers pipeline ignores them and decodes by argmax."
        )
    if format == "onnx":
        limits.append(
            "- The ONNX graph gives logits only: tags come from nerlit's decoder (`Tagger`). "
            "Its inputs: `input_ids`, `attention_mask`"
            + (", `casing_ids`" if case_features else "")
            + "; output `logits [batch, tokens, labels]`."
        )
    if quantize:
        limits.append(
            "- int8 weights (dynamic quantization of the encoder's linear layers; embeddings and "
            "classifier kept fp32): faster on CPUs than fp32, at some cost in accuracy that only "
            "scoring this graph on your data measures. Activation scales are computed per batch, "
            "so a text's tags can depend on which texts share its batch: use the fp32 graph "
            "where the same text must always get the same tags."
        )
    return limits


def model_card(
    loaded,
    format: str = "hf",
    quantize: str | None = None,
    metadata: CardMetadata | None = None,
) -> ModelCard:
    """The card of a :class:`~nerlit.inference.loading.LoadedModel` exported as ``format``
    (``hf``: a Hugging Face folder; ``onnx``: a graph, ``quantize`` int8 or None)."""
    metadata = metadata or CardMetadata()
    labels = list(loaded.labels)
    hparams = loaded.training.get("hyper_parameters") or {}
    progress = loaded.training.get("progress")
    record = loaded.training.get("data")
    run = _run_folder(loaded.source)
    run_config = _read_yaml(run / "config.yaml") if run else None
    test, why_not = _tested_scores(run, loaded.source)
    val_f1 = _best_val_f1(run, loaded.source)
    if val_f1 is None:
        val_f1 = (progress or {}).get("val_f1")
    nerlit = getattr(loaded.config, "nerlit", None) or {}
    settings = {**nerlit, **hparams}
    case_features = bool(settings.get("case_features"))
    crf = settings.get("head") == "crf"
    pipeline_works = format == "hf" and not case_features
    dataset = dataset_name(record, run)
    language = metadata.language or CORPUS_LANGUAGES.get(dataset or "")
    base = None if hparams.get("from_scratch") else _hub_id(hparams.get("name"))
    if metadata.repo_id:
        name = metadata.repo_id.rsplit("/", 1)[-1]
    else:
        name = f"nerlit-{base.rsplit('/', 1)[-1] if base else 'ner'}-{dataset or 'custom'}"

    data = ModelCardData(
        base_model=base,
        datasets=[dataset] if dataset else None,
        language=language or None,
        library_name="transformers" if pipeline_works else "nerlit",
        license=metadata.license,
        metrics=["f1", "precision", "recall"],
        pipeline_tag="token-classification",
        tags=["nerlit", "token-classification", "ner"]
        + (["onnx"] if format == "onnx" else [])
        + ([quantize] if quantize else []),
        model_name=name,
        eval_results=_eval_results(dataset, test, val_f1) or None,
    )
    kind = {
        "hf": "a Hugging Face folder (PyTorch weights)",
        "onnx": f"an ONNX graph ({quantize or 'fp32'})",
    }[format]
    origin = f" from `{base}`" if base else ""
    if hparams.get("from_scratch"):
        origin = " from random weights"
    where = metadata.repo_id or "path/to/this/folder"
    body = [
        f"# {name}",
        "",
        f"Named entity recognition trained with [nerlit](https://github.com/nerlit/nerlit){origin}"
        + (f" on `{dataset}`" if dataset else "")
        + f", exported as {kind}. Entity types: "
        + ", ".join(f"`{t}`" for t in _types(labels))
        + ".",
        "",
        "## Scores",
        "",
        *_scores_section(test, why_not, val_f1, quantize, where),
        "",
        "## Labels",
        "",
        f"{len(labels)} IOB2 labels, in output order: " + ", ".join(f"`{x}`" for x in labels),
        "",
        "## Training data",
        "",
        _data_section(record, dataset, language),
        "",
        "## Training",
        "",
        _hyperparameters(settings, run_config, progress),
        "",
        "## How to use",
        "",
        *_usage(where, format, pipeline_works),
        "",
        "## Limitations",
        "",
        *_limitations(case_features, crf, format, quantize),
        "",
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))


def write_model_card(
    folder: Path,
    loaded,
    format: str = "hf",
    quantize: str | None = None,
    metadata: CardMetadata | None = None,
) -> Path:
    """Write ``README.md`` (see :func:`model_card`) into ``folder``."""
    path = Path(folder) / CARD
    path.write_text(str(model_card(loaded, format, quantize, metadata)), encoding="utf-8")
    return path

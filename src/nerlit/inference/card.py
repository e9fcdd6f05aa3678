"""The model card (``README.md``) every export gets, in the Hugging Face model-card format.

An exported folder travels without its run folder, so the card carries what a user needs to
judge and load the model: YAML front matter the Hub reads (``library_name``, ``pipeline_tag``,
``tags``, ``datasets``, ``metrics``, ``model-index`` with the test scores), the per-type test
table, the labels, the training data and split, the hyperparameters, how to load it and what it
cannot do. Everything comes from the checkpoint (its hyperparameters and data record) and, when
the checkpoint still sits in its run folder, that folder's ``metrics.json`` and ``config.yaml``;
file names are shown without their local directories.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import yaml

from nerlit.data.schemes import split_tag

log = logging.getLogger(__name__)

CARD = "README.md"


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


def _score_rows(scores: dict) -> list[tuple[str, dict]]:
    rows = list(scores.get("per_type", {}).items())
    rows += [(f"{k} avg", scores[k]) for k in ("micro", "macro", "weighted") if k in scores]
    if "reference" in scores:
        rows.append((f"micro avg ({', '.join(scores['reference']['types'])})", scores["reference"]))
    return rows


def _scores_table(scores: dict) -> str:
    lines = ["| type | precision | recall | f1 | support |", "|---|---:|---:|---:|---:|"]
    for name, row in _score_rows(scores):
        cells = [f"{row.get(k, 0.0):.4f}" for k in ("precision", "recall", "f1")]
        lines.append(f"| {name} | {' | '.join(cells)} | {row.get('support', '')} |")
    return "\n".join(lines)


def _model_index(name: str, dataset: str, scores: dict) -> list[dict]:
    micro = scores["micro"]
    metrics = [
        {"type": key, "value": round(float(micro[key]), 4), "name": f"{key} (entity, micro)"}
        for key in ("f1", "precision", "recall")
    ]
    return [
        {
            "name": name,
            "results": [
                {
                    "task": {"type": "token-classification", "name": "Named Entity Recognition"},
                    "dataset": {"type": dataset, "name": dataset, "split": "test"},
                    "metrics": metrics,
                }
            ],
        }
    ]


def _data_section(record: dict | None) -> tuple[list[str], str]:
    """(dataset names, the markdown) from a checkpoint's data record."""
    if not record:
        return [], "Not recorded (the model was exported from a folder, not a checkpoint)."
    config = record.get("config", {})
    name = config.get("name") or "custom"
    files = {
        split: Path(config[f"{split}_file"]).name
        for split in ("train", "val", "test")
        if config.get(f"{split}_file")
    }
    sizes = record.get("sizes", {})
    lines = [f"- corpus: `{name}` ({config.get('format', '?')} format, {config.get('scheme')})"]
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
    return [name], "\n".join(lines)


def _hyperparameters(hparams: dict, run_config: dict | None) -> str:
    rows = [
        ("base model", hparams.get("name")),
        ("head", hparams.get("head")),
        ("decode", hparams.get("decode")),
        ("case features", hparams.get("case_features")),
        ("dropout", hparams.get("dropout")),
        ("max length (subwords per window)", hparams.get("max_length") or "the encoder's"),
        ("stride", hparams.get("stride")),
    ]
    if run_config:
        optimizer = run_config.get("optimizer") or {}
        trainer = run_config.get("trainer") or {}
        data = run_config.get("data") or {}
        rows += [
            ("optimizer", str(optimizer.get("_target_", "")).rsplit(".", 1)[-1] or None),
            ("learning rate", optimizer.get("lr")),
            ("weight decay", optimizer.get("weight_decay")),
            (
                "scheduler",
                str((run_config.get("scheduler") or {}).get("_target_", "")).rsplit(".", 1)[-1]
                or None,
            ),
            ("epochs", trainer.get("max_epochs")),
            ("batch size", data.get("batch_size")),
            ("precision", trainer.get("precision")),
            ("seed", run_config.get("seed")),
        ]
    lines = ["| hyperparameter | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows if value not in (None, "")]
    return "\n".join(lines)


def model_card(loaded, format: str = "hf", quantize: str | None = None) -> str:
    """The card's text for a :class:`~nerlit.inference.loading.LoadedModel` exported as
    ``format`` (``hf``: a Hugging Face folder; ``onnx``: a graph, ``quantize`` int8 or None)."""
    labels = list(loaded.labels)
    hparams = loaded.training.get("hyper_parameters") or {}
    run = _run_folder(loaded.source)
    scores = _read_json(run / "metrics.json") if run else None
    run_config = _read_yaml(run / "config.yaml") if run else None
    nerlit = getattr(loaded.config, "nerlit", None) or {}
    case_features = bool(hparams.get("case_features", nerlit.get("case_features")))
    crf = (hparams.get("head") or nerlit.get("head")) == "crf"
    pipeline_works = format == "hf" and not case_features
    datasets, data_text = _data_section(loaded.training.get("data"))
    base = _hub_id(hparams.get("name"))
    name = f"nerlit-{base.rsplit('/', 1)[-1] if base else 'ner'}-{'-'.join(datasets) or 'ner'}"

    front: dict = {
        "library_name": "transformers" if pipeline_works else "nerlit",
        "pipeline_tag": "token-classification",
        "tags": ["nerlit", "token-classification", "ner"]
        + (["onnx"] if format == "onnx" else [])
        + ([quantize] if quantize else []),
    }
    if base:
        front["base_model"] = base
    if datasets:
        front["datasets"] = datasets
    front["metrics"] = ["f1", "precision", "recall"]
    if scores and "micro" in scores:
        front["model-index"] = _model_index(name, datasets[0] if datasets else "custom", scores)

    kind = {
        "hf": "a Hugging Face folder (PyTorch weights)",
        "onnx": f"an ONNX graph ({quantize or 'fp32'})",
    }[format]
    parts = [
        "---",
        yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip(),
        "---",
        "",
        f"# {name}",
        "",
        "Named entity recognition fine-tuned with [nerlit](https://github.com/nerlit/nerlit)"
        + (f" from `{base}`" if base else "")
        + f", exported as {kind}. Entity types: "
        + ", ".join(f"`{t}`" for t in _types(labels))
        + ".",
        "",
        "## Test scores",
        "",
    ]
    if scores and "per_type" in scores:
        parts += [
            f"Entity level, {scores.get('mode', 'strict')} IOB2 spans over words (seqeval), on the "
            "run's test split:",
            "",
            _scores_table(scores),
        ]
    else:
        parts.append(
            "No test scores: the checkpoint's run folder had no `metrics.json`. Score it with "
            "`nerlit evaluate ckpt_path=THIS_FOLDER data.test_file=FILE`."
        )
    parts += [
        "",
        "## Labels",
        "",
        f"{len(labels)} IOB2 labels, in output order: " + ", ".join(f"`{x}`" for x in labels),
        "",
        "## Training data",
        "",
        data_text,
        "",
        "## Hyperparameters",
        "",
        _hyperparameters({**nerlit, **hparams}, run_config),
        "",
        "## How to use",
        "",
        "```python",
        "from nerlit import Tagger  # pip install nerlit" + ("[onnx]" if format == "onnx" else ""),
        "",
        'tagger = Tagger.load("THIS_FOLDER")'
        + ('  # ONNX Runtime (backend="onnx")' if format == "onnx" else ""),
        'for entity in tagger.predict(["Angela Merkel visited Paris on Monday."])[0]:',
        "    print(entity.text, entity.label, entity.start, entity.end, entity.score)",
        "```",
        "",
        "`nerlit predict ckpt_path=THIS_FOLDER input=texts.txt output=entities.jsonl` tags a file.",
    ]
    if pipeline_works:
        parts += [
            "",
            "With transformers alone:",
            "",
            "```python",
            "from transformers import pipeline",
            "",
            'ner = pipeline("token-classification", model="THIS_FOLDER", '
            'aggregation_strategy="first")',
            "```",
        ]
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
            "classifier kept fp32): about 1.3-1.4x faster than fp32 on CPUs. Measured on the "
            "whole GMB test split, int8 moved entity F1 by -0.12 and +0.04 points against fp32 "
            "(two MiniLM models); score it on your data with `nerlit evaluate`. Activation "
            "scales are computed per batch, so a text's tags can depend on which texts share its "
            "batch (5% of 300 GMB sentences differed tagged alone vs in batches of 32): use the "
            "fp32 graph where the same text must always get the same tags."
        )
    parts += ["", "## Limitations", "", *limits, ""]
    return "\n".join(parts)


def write_model_card(folder: Path, loaded, format: str = "hf", quantize: str | None = None):
    """Write ``README.md`` (see :func:`model_card`) into ``folder``."""
    path = Path(folder) / CARD
    path.write_text(model_card(loaded, format, quantize), encoding="utf-8")
    return path

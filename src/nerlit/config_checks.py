"""Check a composed config once, before any work: every problem in one line that names the key,
the value and what is allowed.

Unchecked, a wrong value travels until something uses it: ``trainer.max_epochs=abc`` was a
TypeError inside Lightning after the corpus was read and the model built, ``data.batch_size=-4``
trained nothing and exited 0, ``+data.foo=1`` a TypeError from the constructor. Each verb calls
:func:`validate` first (``nerlit.train.train``, ``nerlit.evaluate``, ``nerlit.stats``).

Where the schema comes from, and why:

- a group with a ``_target_`` (data, model, optimizer, scheduler, trainer, every logger and
  callback) is checked against the **signature and type hints of its target** (NerDataModule,
  NerModule, adamw, Lightning's Trainer...): the keys it takes and their types are declared once,
  where the values are used, so a new parameter needs no second schema and the check cannot
  drift from the code. A dataclass per group (OmegaConf structured configs) would repeat the 25
  parameters of NerDataModule and the 40 of Trainer, and pydantic is no dependency of nerlit;
- the keys a verb reads itself (``seed``, ``eval_mode``, evaluate's ``split``...) are declared
  here as type hints, one :class:`Schema` per verb (:data:`SCHEMAS`); a key of the verb's own
  ``conf/<verb>.yaml`` that no schema types yet is accepted as it is, any other top-level key
  gets a warning (a user's config may keep values there for its own interpolations);
- what no type hint states (a batch size >= 1, a codec Python knows, split fractions summing to
  1, an accelerator Lightning has) is a :class:`Rule` of the key; a rule replaces the type check
  of its key, so its text says all that is allowed.
"""

from __future__ import annotations

import inspect
import logging
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from nerlit.config import CONFIG_DIR
from nerlit.errors import ConfigError
from nerlit.options import (
    MIN_WINDOW,
    Rule,
    codec,
    expected,
    integer,
    is_int,
    is_number,
    number,
    one_of,
    pad_multiple,
    shown,
    window_length,
)

log = logging.getLogger(__name__)

#: Hydra's instantiation keys: not parameters of the target.
HYDRA_KEYS = {"_target_", "_partial_", "_convert_", "_recursive_", "_args_"}

_NoneType = type(None)


# -- rules: what type hints cannot say -----------------------------------------------------------


def _split_fractions(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and all(is_number(v) and v >= 0 for v in value)
        and abs(sum(value) - 1.0) <= 1e-6
    )


SPLIT_FRACTIONS = Rule(
    "3 numbers >= 0 for train, val and test that sum to 1, e.g. [0.8,0.1,0.1]", _split_fractions
)


def _batches_limit(null: str) -> Rule:
    return Rule(
        "an integer >= 0 (batches) or a number in [0, 1] (a fraction)",
        lambda v: (is_int(v) and v >= 0) or (is_number(v) and 0 <= v <= 1),
        null,
    )


def _duration(value: Any) -> bool:
    """Parsed by Lightning's own ``Timer``, so the check accepts what ``max_time`` does."""
    from lightning.pytorch.callbacks import Timer

    if not isinstance(value, (str, dict)):  # Timer takes a number too, then fails in fit
        return False
    try:
        Timer(duration=value)
    except Exception:  # noqa: BLE001 - its MisconfigurationException, or timedelta's TypeError
        return False
    return True


MAX_TIME = Rule(
    '"DD:HH:MM:SS" (e.g. 00:12:00:00 for 12 hours) or a mapping of days/hours/minutes/seconds '
    "(e.g. {hours:12})",
    _duration,
    "no time limit",
)


def _lightning_names(kind: str) -> list[str]:
    """The accelerators / strategies Lightning knows, from its own registries."""
    if kind == "accelerator":
        from lightning.pytorch.accelerators import AcceleratorRegistry

        return ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]
    from lightning.pytorch.strategies import StrategyRegistry

    return ["auto", *StrategyRegistry.available_strategies()]


def _registered(kind: str) -> Rule:
    names = _lightning_names(kind)
    return Rule(
        f"one of {', '.join(names)} (or a _target_ config)",
        lambda v: (isinstance(v, str) and v in names) or _is_target(v),
    )


#: DDP ranks, sweep jobs: every seed Lightning's seed_everything takes.
SEED = integer(0, 2**32 - 1)


def _data_rules() -> dict[str, Rule]:
    from nerlit.data.corpus import ReadOptions

    return {
        **ReadOptions.RULES,
        "train_scheme": one_of(("iob2", "bioes")),
        "split_fractions": SPLIT_FRACTIONS,
        "split_seed": SEED,
        "unknown_labels": one_of(("error", "o")),
        "batch_size": integer(1),
        "eval_batch_size": integer(1),
        "max_tokens": integer(MIN_WINDOW, null="batches of batch_size windows"),
        "pad_to_multiple_of": pad_multiple(
            "exact on a CPU, a multiple of 32 on a GPU", null="exact padding"
        ),
        "max_length": window_length(null="the encoder's own limit"),
        "stride": integer(0),
        "context": integer(0),
        "num_workers": integer(0),
        "seed": SEED,
    }


def _model_rules() -> dict[str, Rule]:
    from nerlit.models.decoding import DECODERS
    from nerlit.models.module import COMPILE_MODES
    from nerlit.models.network import ATTENTION

    return {
        "dropout": number(0, 1, open_high=True),
        "head": one_of(("linear", "crf")),
        "decode": one_of(DECODERS),
        "attention": one_of(ATTENTION),
        "compile": one_of(COMPILE_MODES[1:], null="eager"),
    }


OPTIMIZER_RULES = {
    "lr": number(0, open_low=True),
    "weight_decay": number(0),
    "eps": number(0, open_low=True),
    "betas": Rule(
        "2 numbers in [0, 1), e.g. [0.9,0.999]",
        lambda v: (
            isinstance(v, list) and len(v) == 2 and all(is_number(b) and 0 <= b < 1 for b in v)
        ),
    ),
}

SCHEDULER_RULES = {"warmup_ratio": number(0, 1)}


def _trainer_rules() -> dict[str, Rule]:
    return {
        "accelerator": _registered("accelerator"),
        "strategy": _registered("strategy"),
        "num_nodes": integer(1),
        "max_epochs": integer(-1, null="Lightning's default: 1000, or unlimited with max_steps"),
        "min_epochs": integer(0, null="none"),
        "max_steps": integer(-1),
        "max_time": MAX_TIME,
        "min_steps": integer(0, null="none"),
        "limit_train_batches": _batches_limit("all"),
        "limit_val_batches": _batches_limit("all"),
        "limit_test_batches": _batches_limit("all"),
        "limit_predict_batches": _batches_limit("all"),
        "num_sanity_val_steps": integer(-1, null="2"),
        "log_every_n_steps": integer(1, null="50"),
        "check_val_every_n_epoch": integer(1, null="validate by val_check_interval alone"),
        "accumulate_grad_batches": integer(1),
        "gradient_clip_val": number(0, null="no clipping"),
    }


# -- verbs: the keys each reads itself -----------------------------------------------------------


@dataclass(frozen=True)
class Schema:
    """What one verb reads: its own keys (type hints), rules, and its ``_target_`` groups."""

    verb: str
    keys: Mapping[str, Any]
    rules: Mapping[str, Rule] = field(default_factory=dict)
    #: group -> rules of its keys; each group is a ``_target_`` config checked by its signature
    groups: Mapping[str, Mapping[str, Rule]] = field(default_factory=dict)
    #: dicts of named ``_target_`` configs (``logger``, ``callbacks``)
    group_dicts: tuple[str, ...] = ()
    #: groups read as plain values, not checked here (``paths``)
    free: tuple[str, ...] = ("paths",)
    #: parameters of a group's target that the verb passes itself, so no config key sets them
    passed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: the data group as evaluate reads it: the NerDataModule keys, each also null (not given)
    nullable_data: bool = False


_TRAIN_PASSED = {
    "data": frozenset({"tokenizer", "output_dir"}),
    "model": frozenset(
        {
            "labels",
            "encoder_config",
            "optimizer",
            "scheduler",
            "scorer",
            "eval_mode",
            "reference_types",
            "tokenizer_dir",
            "context",
            "max_length",
            "stride",
            "data_record",
        }
    ),
    "optimizer": frozenset({"params"}),
    "scheduler": frozenset({"optimizer", "total_steps"}),
    "trainer": frozenset({"callbacks", "logger"}),
}


def _train_schema() -> Schema:
    return Schema(
        verb="train",
        keys={
            "task_name": str,
            "tags": list[str],
            "seed": int,
            "threads": int | None,
            "train": bool,
            "test": bool,
            "ckpt_path": str | None,
            "rerun": str | None,
            "eval_mode": Literal["strict", "conlleval"],
            "optuna_trial": int | None,
        },
        rules={"seed": SEED, "threads": integer(1, null="torch's default")},
        groups={
            "data": _data_rules(),
            "model": _model_rules(),
            "optimizer": OPTIMIZER_RULES,
            "scheduler": SCHEDULER_RULES,
            "trainer": _trainer_rules(),
        },
        group_dicts=("logger", "callbacks"),
        passed=_TRAIN_PASSED,
    )


def _tagger_keys() -> tuple[dict[str, Any], dict[str, Rule]]:
    """Keys evaluate, predict and serve pass to ``Tagger.load``: TaggerOptions' fields, with
    their types and rules (listed once, there), and the two the verbs use themselves."""
    from dataclasses import fields
    from typing import get_type_hints

    from nerlit.inference.tagger import TaggerOptions

    hints = get_type_hints(TaggerOptions)
    keys = {
        "ckpt_path": str,
        "threads": int | None,
        **{option.name: hints[option.name] for option in fields(TaggerOptions)},
    }
    rules = {**TaggerOptions.RULES, "threads": integer(1, null="torch's default")}
    return keys, rules


def _evaluate_schema() -> Schema:
    keys, rules = _tagger_keys()
    keys.update(
        task_name=str,
        seed=int,
        split=Literal["train", "val", "test"],
        allow_train_overlap=bool,
        eval_mode=Literal["strict", "conlleval"],
        plot=bool | None,
    )
    return Schema(
        verb="evaluate",
        keys=keys,
        rules={**rules, "seed": SEED},
        groups={"data": _data_rules()},
        passed=_TRAIN_PASSED,
        nullable_data=True,
    )


def _predict_schema() -> Schema:
    from nerlit.inference.files import OUTPUT_FORMATS

    keys, rules = _tagger_keys()
    keys.update(
        task_name=str,
        input=str,
        output=str,
        format=str | None,
        token_column=int,
        chunk_size=int,
        progress=bool | None,
        encoding=str,
    )
    rules.update(
        format=one_of(OUTPUT_FORMATS, null="from the output's name: .html, .conll, else jsonl"),
        chunk_size=integer(1),
        encoding=codec(),
    )
    return Schema(verb="predict", keys=keys, rules=rules)


def _export_schema() -> Schema:
    keys = {
        "task_name": str,
        "ckpt_path": str,
        "output_dir": str,
        "tokenizer_dir": str | None,
        "format": str,
        "quantize": str | None,
        "overwrite": bool,
        "license": str,
        "language": str | list[str] | None,
        "push_to": str | None,
        "push_private": bool,
    }
    rules = {"format": one_of(("hf", "onnx")), "quantize": one_of(("int8",), null="fp32")}
    return Schema(verb="export", keys=keys, rules=rules)


def _stats_schema() -> Schema:
    return Schema(
        verb="stats",
        keys={"task_name": str, "seed": int},
        rules={"seed": SEED},
        groups={"data": _data_rules(), "model": _model_rules()},
        passed=_TRAIN_PASSED,
    )


def _audit_schema() -> Schema:
    """train's keys (every fold trains with them) and the audit's own: ``k=abc`` was a
    ValueError and ``val_fraction=2`` trained each fold on one sentence, after the corpus was
    read."""
    train = _train_schema()
    return Schema(
        verb="audit",
        keys={
            **train.keys,
            "k": int,
            "splits": list[str],
            "subset": int | None,
            "audit_seed": int,
            "val_fraction": float,
            "html_top": int | None,
            "keep_checkpoints": bool,
        },
        rules={
            **train.rules,
            "k": integer(2),
            "subset": integer(1, null="every sentence"),
            "audit_seed": SEED,
            "val_fraction": number(0, 1, open_low=True, open_high=True),
            "html_top": integer(0, null="every sentence"),
        },
        groups=train.groups,
        group_dicts=train.group_dicts,
        passed=train.passed,
    )


def _serve_schema() -> Schema:
    """The Tagger's options (as predict's) and the server's: ``port=70000`` was wrapped by the
    socket layer (it listened on 4464 while saying 70000)."""
    keys, rules = _tagger_keys()
    counts = ("max_texts", "max_chars", "max_batch_size", "max_pending", "max_headers")
    waits = ("batch_timeout", "refill_timeout")
    deadlines = ("header_timeout", "body_timeout", "keep_alive_timeout")
    keys.update(
        task_name=str,
        host=str,
        port=int,
        release_memory_after=int,
        max_header_bytes=int,
        log_level=str,
        access_log=bool,
        **dict.fromkeys(counts, int),
        **dict.fromkeys((*waits, *deadlines), float),
    )
    rules.update(
        port=integer(0, 65535),
        release_memory_after=integer(0),
        max_header_bytes=integer(1024),
        log_level=one_of(("critical", "error", "warning", "info", "debug", "trace")),
        **dict.fromkeys(counts, integer(1)),
        **dict.fromkeys(waits, number(0)),
        **dict.fromkeys(deadlines, number(0, open_low=True)),
    )
    return Schema(verb="serve", keys=keys, rules=rules)


def _compare_schema() -> Schema:
    from nerlit.evaluation.metrics import MODES

    paths = str | None
    keys = {
        "task_name": str,
        "a": paths,
        "b": paths,
        "sweep": paths,
        "mode": str | None,
        "reference_types": str | list[str] | None,
        "resamples": int,
        "seed": int,
        "confidence": float,
        "test_file": paths,
        "json": paths,
        "plot": bool | str | None,
    }
    rules = {
        "mode": one_of(MODES, null="A's metrics.json, else strict"),
        "resamples": integer(1),
        "seed": SEED,
        "confidence": number(0, 1, open_low=True, open_high=True),
    }
    return Schema(verb="compare", keys=keys, rules=rules)


def _init_schema() -> Schema:
    return Schema(verb="init", keys={"task_name": str, "dir": str, "overwrite": bool})


SCHEMAS: dict[str, Callable[[], Schema]] = {
    "train": _train_schema,
    "evaluate": _evaluate_schema,
    "predict": _predict_schema,
    "export": _export_schema,
    "stats": _stats_schema,
    "audit": _audit_schema,
    "serve": _serve_schema,
    "compare": _compare_schema,
    "init": _init_schema,
}


# -- type hints -----------------------------------------------------------------------------------


def _is_target(value: Any) -> bool:
    return isinstance(value, Mapping) and "_target_" in value


def _is_union(origin: Any) -> bool:
    return origin is Union or origin is types.UnionType


def fits(value: Any, hint: Any) -> bool:
    """Whether a config value (plain Python, as ``OmegaConf.to_container`` gives) fits ``hint``.

    Config values are scalars, lists and dicts, so classes other than those are met only by a
    ``_target_`` config (instantiated later, and checked by its own signature). A hint this
    cannot read (a forward reference, a TypeVar) accepts anything: a false alarm would stop a
    run that works.
    """
    if hint is Any or hint is inspect.Parameter.empty or isinstance(hint, (str, typing.TypeVar)):
        return True
    origin = typing.get_origin(hint)
    if _is_union(origin):
        return any(fits(value, arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(hint))
    if origin is typing.Annotated:
        return fits(value, typing.get_args(hint)[0])
    if hint is None or hint is _NoneType:
        return value is None
    if _is_target(value):
        return True
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return is_int(value)
    if hint is float:
        return is_number(value)
    if hint is str:
        return isinstance(value, str)
    container = origin or hint
    if isinstance(container, type) and issubclass(container, os.PathLike):
        return isinstance(value, str)
    if container in (list, tuple, set, frozenset) or container in (Sequence, Iterable):
        if not isinstance(value, list):
            return False
        args = typing.get_args(hint)
        if container is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(fits, value, args))
        return all(fits(v, args[0]) for v in value) if args else True
    if container in (dict, Mapping):
        if not isinstance(value, dict):
            return False
        args = typing.get_args(hint)
        return (
            all(fits(k, args[0]) and fits(v, args[1]) for k, v in value.items()) if args else True
        )
    if container in (Callable, typing.Callable) or not isinstance(container, type):
        return True
    return isinstance(value, container)


_PLURAL = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}


def describe(hint: Any) -> str:
    """A type hint in the words of a config: ``int | None`` -> ``an integer or null``."""
    origin = typing.get_origin(hint)
    if _is_union(origin) or origin is Literal:
        literals, parts = [], []
        for arg in typing.get_args(hint) if _is_union(origin) else (hint,):
            if typing.get_origin(arg) is Literal:
                literals += typing.get_args(arg)
            elif arg is not _NoneType:
                parts.append(describe(arg))
        if literals:
            choices = dict.fromkeys(map(shown, literals))
            parts.insert(0, f"one of {', '.join(choices)}")
        if _NoneType in typing.get_args(hint):
            parts.append("null")
        return " or ".join(dict.fromkeys(parts))
    if origin is typing.Annotated:
        return describe(typing.get_args(hint)[0])
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in words:
        return words[hint]
    container = origin or hint
    args = typing.get_args(hint)
    if container in (list, tuple, set, frozenset, Sequence, Iterable):
        if container is tuple and args and args[-1] is not Ellipsis:
            if len(set(args)) == 1:
                return f"a list of {len(args)} {_PLURAL.get(args[0], describe(args[0]))}"
            return f"a list [{', '.join(map(describe, args))}]"
        return f"a list of {_PLURAL.get(args[0], describe(args[0]))}" if args else "a list"
    if container in (dict, Mapping):
        return "a mapping {key: value}"
    if isinstance(container, type) and issubclass(container, os.PathLike):
        return "a path"
    name = getattr(hint, "__name__", str(hint))
    return f"a {name} (a _target_ config)"


def _hints(target: Callable) -> dict[str, Any]:
    """The type hints of a callable's parameters; one that cannot be resolved is left out."""
    function = target.__init__ if inspect.isclass(target) else target
    try:
        return typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - an import under TYPE_CHECKING: resolve one by one
        pass
    hints = {}
    namespace = getattr(inspect.unwrap(function), "__globals__", {})
    for name, annotation in getattr(function, "__annotations__", {}).items():
        try:
            hints[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation  # noqa: S307
        except Exception:  # noqa: BLE001
            continue
    return hints


# -- checking -------------------------------------------------------------------------------------


class _Problems(list):
    def bad(self, key: str, value: Any, allowed: str) -> None:
        self.append(expected(key, value, allowed))


def _value(
    node: DictConfig, key: str, path: str, problems: _Problems, optional: bool = False
) -> tuple[bool, Any]:
    """(found, plain value) of ``node[key]``; a missing mandatory value (``???``) is a problem
    unless ``optional`` (evaluate's data: what is not given is taken from the checkpoint)."""
    try:
        value = node[key]
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue:
        if not optional:
            problems.append(f"{path} is required: set {path}=...")
        return False, None
    except Exception:  # noqa: BLE001 - an interpolation only the job resolves: its user says so
        return False, None
    return True, value


def _check_value(path: str, value: Any, hint: Any, rule: Rule | None, problems: _Problems) -> None:
    if rule is not None:
        if not rule.accepts(value):
            problems.bad(path, value, rule.describe())
    elif not fits(value, hint):
        problems.bad(path, value, describe(hint))


def _check_target(
    node: DictConfig,
    path: str,
    rules: Mapping[str, Rule],
    passed: frozenset[str],
    problems: _Problems,
    nullable: bool = False,
) -> None:
    """A ``_target_`` config against its target's signature: unknown keys, types, rules."""
    try:
        target = get_object(str(node["_target_"]))
        signature = inspect.signature(target)
    except Exception as error:  # noqa: BLE001 - Hydra's instantiate reports a bad _target_ too
        problems.append(f"{path}._target_={node.get('_target_')}: cannot be imported ({error})")
        return
    parameters = {
        name: p
        for name, p in signature.parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and name not in passed
    }
    takes_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    hints = _hints(target)
    name = getattr(target, "__qualname__", str(target))
    for key in node:
        key = str(key)
        if key in HYDRA_KEYS:
            continue
        where = f"{path}.{key}"
        if key not in parameters:
            if takes_any and key not in passed:
                continue
            why = "is set by nerlit" if key in passed else "is not an option"
            problems.append(f"{where} {why}: {path} ({name}) takes {', '.join(sorted(parameters))}")
            continue
        found, value = _value(node, key, where, problems, optional=nullable)
        if not found or (nullable and value is None):
            continue
        if _is_target(value) and isinstance(node[key], DictConfig):
            _check_target(node[key], where, {}, frozenset(), problems)
            continue
        _check_value(where, value, hints.get(key, Any), rules.get(key), problems)


def _check_plain_data(node: DictConfig, rules: Mapping[str, Rule], problems: _Problems) -> None:
    """evaluate's data node without a preset: NerDataModule's keys, each null unless given."""
    from nerlit.data.datamodule import NerDataModule

    parameters = set(inspect.signature(NerDataModule).parameters) - _TRAIN_PASSED["data"]
    hints = _hints(NerDataModule)
    for key in node:
        key = str(key)
        where = f"data.{key}"
        if key not in parameters:
            problems.append(f"{where} is not an option: data takes {', '.join(sorted(parameters))}")
            continue
        found, value = _value(node, key, where, problems, optional=True)
        if found and value is not None:
            _check_value(where, value, hints.get(key, Any), rules.get(key), problems)


def _declared(verb: str) -> set[str]:
    """The keys ``conf/<verb>.yaml`` declares, with those of a verb config it builds on
    (``audit.yaml``'s ``defaults: [train]``): read by the verb, whether or not typed here."""
    path = os.path.join(CONFIG_DIR, f"{verb}.yaml")
    if not os.path.isfile(path):
        return set()
    config = OmegaConf.load(path)
    keys = {str(k) for k in config} - {"defaults", "hydra"}
    for entry in config.get("defaults", []):
        if isinstance(entry, str) and entry != "_self_" and entry != verb:
            keys |= _declared(entry)
    return keys


def _device_count(devices: Any) -> int | None:
    """Processes ``trainer.devices`` asks for on this node; None where Lightning decides."""
    if isinstance(devices, str) and devices.strip().isdigit():
        devices = int(devices)
    if is_int(devices) and devices > 0:
        return devices
    if isinstance(devices, (list, tuple)):
        return len(devices)
    return None  # "auto", -1, or a value the Trainer's own type check refuses


def _column_problems(data: DictConfig) -> list[str]:
    """A column *name* for a CoNLL file: ``data.tag_column=abc`` passes :data:`COLUMN` (names are
    how a saved dataset's columns are chosen), but a CoNLL file's columns are numbered, and the
    reader would refuse it only once the model is built and the corpus opened."""
    from nerlit.data.readers import conll_column_problem

    try:
        if data.get("format") != "conll":
            return []
        columns = {key: data.get(key) for key in ("token_column", "tag_column")}
    except Exception:  # an unresolvable value: reported by the key checks
        return []
    problems = (conll_column_problem(key, value) for key, value in columns.items())
    return [problem for problem in problems if problem]


def _device_problems(trainer: DictConfig) -> list[str]:
    """``trainer.devices`` beyond what this machine has: one training process is started per
    device, so ``trainer.devices=99`` on 2 CPU cores launched 98 ranks that could only fail or
    contend. Skipped where the processes are started by torchrun or SLURM (their node may not be
    this one)."""
    if "LOCAL_RANK" in os.environ or "SLURM_NTASKS" in os.environ:
        return []
    try:
        devices = trainer.get("devices")
    except Exception:  # an unresolvable value: reported by the key checks
        return []
    wanted = _device_count(list(devices) if isinstance(devices, ListConfig) else devices)
    accelerator = str(trainer.get("accelerator", "auto"))
    if wanted is None or wanted == 1 or accelerator not in ("cpu", "gpu", "cuda", "auto"):
        return []
    import torch

    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        have, what = torch.cuda.device_count(), "GPUs"
    else:
        have = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        what = "CPU cores (one training process per device)"
    if wanted <= (have or 1):
        return []
    return [
        f"trainer.devices={wanted}: this machine has {have} {what}; use trainer.devices={have} "
        f"or fewer, or run on a machine with more"
    ]


def _untrained_problems(cfg: DictConfig) -> list[str]:
    """A run that trains no step: ``trainer.max_epochs=0`` (or ``max_steps=0``) ended fit at
    once and tested the untrained model, an F1 near 0 and exit status 0. ``train=false`` is the
    way to test without training."""
    if not cfg.get("train", True) or not isinstance(cfg.get("trainer"), DictConfig):
        return []
    problems = []
    for key, allowed in (
        ("max_epochs", "an integer >= 1, or -1 with trainer.max_steps >= 1"),
        ("max_steps", "an integer >= 1, or -1 (no step limit)"),
    ):
        try:
            value = cfg.trainer.get(key)
        except Exception:  # noqa: BLE001 - an unresolvable value: reported by the key checks
            continue
        if is_int(value) and value == 0:
            problems.append(
                f"trainer.{key}=0 trains nothing and would test the untrained model: "
                f"expected {allowed} (or train=false to test a checkpoint, ckpt_path=...)"
            )
    return problems


def problems_of(cfg: DictConfig, verb: str) -> list[str]:
    """Every problem of ``cfg`` for ``verb`` (a key of :data:`SCHEMAS`), in words."""
    schema = SCHEMAS[verb]()
    problems = _Problems()
    declared = _declared(verb)
    unread = []
    for key in cfg:
        key = str(key)
        if key in schema.keys:
            found, value = _value(cfg, key, key, problems)
            if found:
                _check_value(key, value, schema.keys[key], schema.rules.get(key), problems)
        elif key in schema.groups:
            node = cfg[key]
            if node is None:
                continue
            if not isinstance(node, DictConfig):
                problems.bad(key, node, "a config group (choose one: " + key + "=OPTION)")
            elif "_target_" in node:
                _check_target(
                    node,
                    key,
                    schema.groups[key],
                    schema.passed.get(key, frozenset()),
                    problems,
                    nullable=schema.nullable_data,
                )
            elif schema.nullable_data and key == "data":
                _check_plain_data(node, schema.groups[key], problems)
            else:
                problems.append(f"{key} has no _target_: choose an option ({key}=OPTION)")
        elif key in schema.group_dicts:
            node = cfg[key]
            for name in node or {}:
                entry = node[name]
                if isinstance(entry, DictConfig) and "_target_" in entry:
                    _check_target(entry, f"{key}.{name}", {}, frozenset(), problems)
        elif key not in schema.free and key not in declared:
            unread.append(key)
    if "trainer" in schema.groups and isinstance(cfg.get("trainer"), DictConfig):
        problems.extend(_device_problems(cfg.trainer))
    if "data" in schema.groups and isinstance(cfg.get("data"), DictConfig):
        problems.extend(_column_problems(cfg.data))
    if "train" in schema.keys:
        problems.extend(_untrained_problems(cfg))
    if unread:
        # not an error: a user's own config may keep values there for its interpolations
        log.warning(
            "nerlit %s does not read %s (its options: %s)",
            verb,
            ", ".join(unread),
            ", ".join(sorted({*schema.keys, *schema.groups, *schema.group_dicts, *declared})),
        )
    return list(problems)


def validate(cfg: DictConfig, verb: str) -> None:
    """Raise :class:`ConfigError` listing every problem of ``cfg`` for ``verb``, in one line.

    Called first by each verb: before any file is read, model loaded or directory written.
    """
    problems = problems_of(cfg, verb)
    if problems:
        raise ConfigError("; ".join(problems))

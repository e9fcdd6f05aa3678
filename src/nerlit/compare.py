"""``nerlit compare A B``: is run B really better than run A on the same test sentences?

NER F1 moves by several tenths of a point between seeds of one recipe, so a difference between
two runs means little without a test. This prints each run's entity F1, the difference B - A
with its paired-bootstrap 95% interval, and a two-sided p-value from approximate randomization,
for micro and macro F1 and each type (:func:`nerlit.evaluation.bootstrap.paired_test`, which
cites the method: Berg-Kirkpatrick et al. 2012, "An Empirical Investigation of Statistical
Significance in NLP", for the paired bootstrap; Yeh 2000 and Riezler & Maxwell 2005 for
approximate randomization; Dror et al. 2018 for the choice). Resampling units are documents
where both runs' predictions mark them (``-DOCSTART-``), sentences otherwise. Per-type p-values
are not corrected for testing many types at once.

A and B may each be:

- a run directory of ``nerlit train`` or an output directory of ``nerlit evaluate``: its
  ``predictions.conll``;
- a predictions file (``word gold predicted`` per line, as those write);
- a nerlit ``.ckpt`` (or an exported model folder with ``--test-file``): tagged here on its run's
  own test split, or on ``--test-file``.

Both must have scored the same sentences (same words, same order, same gold tags); otherwise
the comparison is refused with one line naming the first difference.

A plain argparse command rather than a Hydra app: it takes two positional paths and a few
flags, composes no config groups and writes no run folder, so Hydra would only turn
``nerlit compare A B`` into ``nerlit compare a=A b=B`` and add an outputs/ folder per call.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from nerlit.cli import exit_on_user_error
from nerlit.data.schemes import split_tag
from nerlit.errors import DataError, OptionError
from nerlit.evaluation.bootstrap import (
    CONFIDENCE,
    SEED,
    PairedResult,
    group,
    paired_test,
    sentence_counts,
    unit_index,
)
from nerlit.evaluation.metrics import MODES
from nerlit.evaluation.predictions import Predictions, check_same_sentences, read_predictions
from nerlit.inference.outputs import atomic_text_file, check_file_target

#: approximate-randomization swaps (and bootstrap resamples): p-values near 0.05 need ~1e4
RESAMPLES = 10_000
PREDICTIONS = "predictions.conll"


def _run_metrics(path: Path) -> dict:
    """metrics.json beside a run's predictions (its mode and reference types), else {}."""
    folder = path if path.is_dir() else path.parent
    try:
        return json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def tag_model(path: Path, test_file: str | None) -> Predictions:
    """Tag a checkpoint's own test split (or ``test_file``) as ``nerlit evaluate`` would."""
    from omegaconf import OmegaConf

    from nerlit.evaluate import check_train_overlap, read_data_record, resolve_split
    from nerlit.inference.loading import quiet_transformers
    from nerlit.inference.tagger import Tagger

    quiet_transformers()
    record = read_data_record(path)
    if record is None and not test_file:
        raise OptionError(
            f"{path} records no test split (an exported folder or an old checkpoint): "
            f"pass --test-file FILE"
        )
    data = OmegaConf.create({"test_file": test_file}) if test_file else None
    split = resolve_split(data, "test", record, str(path))
    check_train_overlap(split, record, allow=False)
    tagger = Tagger.load(path)
    sentences = split.sentences
    pred = tagger.predict_tags([s.words for s in sentences], [s.document for s in sentences])
    return Predictions(list(sentences), pred, str(path))


def load_run(path: str | Path, test_file: str | None = None) -> Predictions:
    """The scored sentences of a run directory, predictions file, checkpoint or model folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        if (path / PREDICTIONS).is_file():
            return read_predictions(path / PREDICTIONS)
        if (path / "config.json").is_file():  # an exported model folder
            return tag_model(path, test_file)
        raise OptionError(
            f"{path} has no {PREDICTIONS}: train and evaluate write one into their run folder "
            f"(runs trained before nerlit did lack it: compare their checkpoint instead, "
            f"{path}/checkpoints/<best>.ckpt)"
        )
    if path.suffix == ".ckpt":
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint")
        return tag_model(path, test_file)
    if path.is_file():
        return read_predictions(path)
    raise FileNotFoundError(f"{path}: no such run directory, predictions file or checkpoint")


def check_confidence(confidence: float) -> None:
    """Refuse a level outside (0, 1): 1.5 broke numpy's percentile deep in the bootstrap, and 0
    printed empty "0%" intervals as if they meant something. NaN fails the test too."""
    if not 0 < confidence < 1:
        raise OptionError(
            f"--confidence {confidence}: expected a level between 0 and 1 (exclusive), e.g. 0.95"
        )


def compare(
    a: Predictions,
    b: Predictions,
    mode: str = "strict",
    reference: Sequence[str] = (),
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> tuple[list[PairedResult], dict]:
    """The rows of the comparison and how it was made (unit, units, resamples, seed)."""
    if mode not in MODES:
        raise OptionError(f"mode={mode!r}: expected one of {MODES}")
    check_confidence(confidence)
    check_same_sentences(a, b)
    gold = a.gold
    if not gold:
        raise DataError(
            f"nothing to compare: {a.source or 'A'} and {b.source or 'B'} hold no scored "
            f"sentences; give the predictions.conll of runs that scored a test split"
        )
    types = sorted(
        {split_tag(t)[1] for run in (gold, a.pred, b.pred) for s in run for t in s} - {""}
    )
    units_a, units_b = unit_index(a.documents), unit_index(b.documents)
    same_units = (units_a is None) == (units_b is None) and (
        units_a is None or np.array_equal(units_a, units_b)
    )
    units = units_a if same_units else None
    counts_a = group(sentence_counts(gold, a.pred, mode, types), units)
    counts_b = group(sentence_counts(gold, b.pred, mode, types), units)
    reference = [t for t in reference if t in types]
    rows = paired_test(counts_a, counts_b, resamples, seed, confidence, reference)
    how = {
        "mode": mode,
        "unit": counts_a.unit,
        "units": counts_a.units,
        "sentences": len(gold),
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
        "interval": "paired percentile bootstrap",
        "p_value": "two-sided approximate randomization",
    }
    return rows, how


def comparison_table(rows: Sequence[PairedResult], how: dict, a: str, b: str) -> Table:
    level = f"{round(100 * how['confidence'])}%"
    table = Table(
        title=f"B vs A: entity F1 ({how['mode']}), {how['sentences']} sentences",
        caption=(
            f"A: {a}\nB: {b}\n{level} CI of B - A: {how['interval']}; p: {how['p_value']}; "
            f"{how['resamples']} resamples over {how['units']} {how['unit']}s, seed {how['seed']}"
        ),
    )
    for column in ("", "F1 A", "F1 B", "B - A", f"{level} CI", "p"):
        table.add_column(column, justify="left" if not column else "right")
    for row in rows:
        low, high = row.interval
        style = "bold" if row.name.startswith("micro") else None
        table.add_row(
            row.name,
            f"{row.f1_a:.4f}",
            f"{row.f1_b:.4f}",
            f"{row.difference:+.4f}",
            f"{low:+.4f} to {high:+.4f}",
            f"{row.p_value:.4f}",
            style=style,
        )
    return table


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="nerlit compare",
        description="Compare two runs on the same test sentences: F1 of each, B - A with its "
        "paired-bootstrap interval, and an approximate-randomization p-value, overall and per "
        "type.",
    )
    parse.add_argument(
        "a",
        help="run directory, evaluate output directory, predictions file "
        "or checkpoint (the baseline)",
    )
    parse.add_argument("b", help="the same for the run compared with A")
    parse.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="entity matching (default: A's metrics.json, else strict)",
    )
    parse.add_argument(
        "--reference-types",
        default=None,
        help="comma-separated types to add a micro row over (default: A's report)",
    )
    parse.add_argument(
        "--resamples", type=int, default=RESAMPLES, help=f"default {RESAMPLES:,}: p down to 1e-4"
    )
    parse.add_argument("--seed", type=int, default=SEED, help=f"default {SEED}")
    parse.add_argument("--confidence", type=float, default=CONFIDENCE, help="default 0.95")
    parse.add_argument(
        "--test-file",
        default=None,
        help="for a checkpoint or model folder: the file to tag (default: its "
        "run's own test split)",
    )
    parse.add_argument("--json", default=None, metavar="PATH", help="also write the rows here")
    return parse


@exit_on_user_error
def run(argv: Sequence[str] | None = None) -> list[PairedResult]:
    args = parser().parse_args(argv)
    if args.resamples < 1:
        raise OptionError(f"--resamples {args.resamples}: expected at least 1")
    check_confidence(args.confidence)  # before tagging or resampling anything
    if args.json:  # a folder or unwritable path found now, not after the whole computation
        check_file_target(args.json, "--json")
    a, b = load_run(args.a, args.test_file), load_run(args.b, args.test_file)
    metrics = _run_metrics(Path(args.a).expanduser())
    mode = args.mode or metrics.get("mode", "strict")
    if args.reference_types is not None:
        reference = [t for t in args.reference_types.split(",") if t]
    else:
        reference = metrics.get("reference", {}).get("types", [])
    rows, how = compare(a, b, mode, reference, args.resamples, args.seed, args.confidence)
    Console().print(comparison_table(rows, how, args.a, args.b))
    if args.json:
        result = {
            "a": str(args.a),
            "b": str(args.b),
            **how,
            "rows": [{**vars(row), "difference": row.difference} for row in rows],
        }
        with atomic_text_file(args.json, "--json") as handle:
            handle.write(json.dumps(result, indent=2))
    return rows


def main() -> None:
    """``nerlit compare A B`` / ``python -m nerlit.compare A B``."""
    run(sys.argv[1:])


if __name__ == "__main__":
    main()

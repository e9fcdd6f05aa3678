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

Options are ``key=value`` as in every verb (conf/compare.yaml); ``nerlit compare A B`` reads as
``a=A b=B``. ``sweep=DIR`` compares every run of a ``-m`` sweep with the best one by dev F1.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from nerlit.commands.cli import exit_on_user_error, override_value
from nerlit.config import CONFIG_DIR
from nerlit.config_checks import validate
from nerlit.errors import OptionError
from nerlit.evaluation.bootstrap import PairedResult, compare_predictions, holm_adjusted
from nerlit.evaluation.predictions import Predictions, read_predictions
from nerlit.inference.outputs import atomic_text_file, check_file_target

PREDICTIONS = "predictions.conll"

log = logging.getLogger(__name__)


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

    from nerlit.data.held_out import split_to_score
    from nerlit.inference.loading import quiet_transformers
    from nerlit.inference.tagger import Tagger
    from nerlit.models.checkpoint import read_data_record

    quiet_transformers()
    record = read_data_record(path)
    if record is None and not test_file:
        raise OptionError(
            f"{path} records no test split (an exported folder or an old checkpoint): "
            f"pass test_file=FILE"
        )
    data = OmegaConf.create({"test_file": test_file}) if test_file else None
    tagger = Tagger.load(path)
    split, _ = split_to_score(data, "test", record, str(path), tagger.labels)
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


def positional_as_keys(args: Sequence[str]) -> list[str]:
    """``nerlit compare A B`` as ``a=A b=B``, and ``nerlit compare SWEEP`` as ``sweep=SWEEP``:
    the two paths read naturally in that order; every option is ``key=value``, as in every verb."""
    paths = [arg for arg in args if "=" not in arg and not arg.startswith("-")]
    rest = [arg for arg in args if arg not in paths]
    if not paths or len(paths) > 2:
        return list(args)
    keys = ["sweep"] if len(paths) == 1 else ["a", "b"]
    return [
        *(f"{key}={override_value(path)}" for key, path in zip(keys, paths, strict=True)),
        *rest,
    ]


def _check_options(cfg: DictConfig) -> None:
    """The options, before tagging or resampling anything (a bad json= found only after the
    whole computation wasted it): ranges by the config checks, then which runs are named."""
    validate(cfg, "compare")
    if cfg.sweep is not None and (cfg.a is not None or cfg.b is not None):
        raise OptionError("sweep= compares the runs of one sweep: leave a= and b= out")
    if cfg.sweep is None and (cfg.a is None or cfg.b is None):
        raise OptionError(
            "name two runs (nerlit compare a=RUN_A b=RUN_B) or a sweep folder "
            "(nerlit compare sweep=outputs/train/multiruns/TIME)"
        )
    if cfg.json:
        check_file_target(str(cfg.json), "json")


def _reference_types(value: object, metrics: dict) -> list[str]:
    if value is None:
        return list(metrics.get("reference", {}).get("types", []))
    if isinstance(value, str):
        return [t for t in value.split(",") if t]
    return [str(t) for t in value]


def compare_runs(cfg: DictConfig) -> list[PairedResult] | list[dict]:
    """``nerlit compare``: two runs (a=, b=), or every run of a sweep against its best."""
    _check_options(cfg)
    if cfg.sweep is not None:
        return compare_sweep(cfg)
    a, b = load_run(cfg.a, cfg.test_file), load_run(cfg.b, cfg.test_file)
    metrics = _run_metrics(Path(str(cfg.a)).expanduser())
    mode = cfg.mode or metrics.get("mode", "strict")
    reference = _reference_types(cfg.reference_types, metrics)
    rows, how = compare_predictions(a, b, mode, reference, cfg.resamples, cfg.seed, cfg.confidence)
    Console().print(comparison_table(rows, how, str(cfg.a), str(cfg.b)))
    if cfg.json:
        result = {
            "a": str(cfg.a),
            "b": str(cfg.b),
            **how,
            "rows": [{**vars(row), "difference": row.difference} for row in rows],
        }
        with atomic_text_file(str(cfg.json), "json") as handle:
            handle.write(json.dumps(result, indent=2))
    return rows


def compare_sweep(cfg: DictConfig) -> list[dict]:
    """Every finished run of a ``-m`` sweep against the best by dev F1, on the test split.

    The best is chosen on dev, never on test; each other run is B against it as A. With k
    comparisons about k/20 p-values fall below 0.05 by chance alone, so the table adds Holm's
    adjusted p, and the caption says so.
    """
    from nerlit.experiments.sweep import sweep_jobs

    folder = Path(str(cfg.sweep)).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"sweep={folder}: no such folder")
    jobs = [
        job
        for job in sweep_jobs(folder)
        if job["best_val_f1"] is not None and (Path(job["run_dir"]) / PREDICTIONS).is_file()
    ]
    if len(jobs) < 2:
        raise OptionError(
            f"sweep={folder}: {len(jobs)} finished run(s) with a dev F1 and {PREDICTIONS}; "
            f"comparing needs two (a folder written by nerlit train -m)"
        )
    best, others = jobs[0], jobs[1:]
    best_dir = Path(best["run_dir"])
    metrics = _run_metrics(best_dir)
    mode = cfg.mode or metrics.get("mode", "strict")
    reference = _reference_types(cfg.reference_types, metrics)
    a = read_predictions(best_dir / PREDICTIONS)
    results, how = [], {}
    for job in others:
        b = read_predictions(Path(job["run_dir"]) / PREDICTIONS)
        rows, how = compare_predictions(
            a, b, mode, reference, cfg.resamples, cfg.seed, cfg.confidence
        )
        micro = next(row for row in rows if row.name.startswith("micro"))
        results.append({"job": job, "micro": micro})
    adjusted = holm_adjusted([r["micro"].p_value for r in results])
    records = [
        {
            "job": r["job"]["job"],
            "overrides": r["job"]["overrides"],
            "dev_f1": r["job"]["best_val_f1"],
            "test_f1": r["micro"].f1_b,
            "difference": r["micro"].difference,
            "interval": r["micro"].interval,
            "p_value": r["micro"].p_value,
            "p_holm": p_holm,
        }
        for r, p_holm in zip(results, adjusted, strict=True)
    ]
    Console().print(sweep_table(best, results[0]["micro"].f1_a, records, how))
    _plot_sweep(cfg, folder, [best, *others])
    if cfg.json:
        result = {"sweep": str(folder), "best": best["job"], **how, "runs": records}
        with atomic_text_file(str(cfg.json), "json") as handle:
            handle.write(json.dumps(result, indent=2))
    return records


def sweep_table(best: dict, best_test_f1: float, records: Sequence[dict], how: dict) -> Table:
    level = f"{round(100 * how['confidence'])}%"
    table = Table(
        title=f"each run vs the best by dev F1: test entity F1 ({how['mode']}), "
        f"{how['sentences']} sentences",
        caption=(
            f"best: job {best['job']} ({best['overrides'] or 'no overrides'}), dev F1 "
            f"{best['best_val_f1']:.4f}, test F1 {best_test_f1:.4f}. {level} CI of run - best: "
            f"{how['interval']}; p: {how['p_value']}, {how['resamples']} resamples over "
            f"{how['units']} {how['unit']}s. {len(records)} comparisons: about 1 in 20 p-values "
            f"falls below 0.05 by chance alone, so judge by Holm's adjusted p; the best was "
            f"chosen on dev, so its test lead is not evidence by itself."
        ),
    )
    for column in ("job", "overrides", "dev F1", "test F1", "run - best", f"{level} CI", "p"):
        table.add_column(column, justify="left" if column in ("job", "overrides") else "right")
    table.add_column("p (Holm)", justify="right")
    for record in records:
        low, high = record["interval"]
        table.add_row(
            record["job"],
            record["overrides"],
            f"{record['dev_f1']:.4f}",
            f"{record['test_f1']:.4f}",
            f"{record['difference']:+.4f}",
            f"{low:+.4f} to {high:+.4f}",
            f"{record['p_value']:.4f}",
            f"{record['p_holm']:.4f}",
        )
    return table


def _plot_sweep(cfg: DictConfig, folder: Path, jobs: Sequence[dict]) -> None:
    """The runs' dev F1 curves in one PNG, from each run's CSV log."""
    if cfg.plot is False:
        return
    from nerlit import extras
    from nerlit.evaluation.curves import plot_dev_f1

    if cfg.plot is None and not extras.installed("matplotlib"):
        log.info('dev F1 curves not drawn: pip install "nerlit[plots]"')
        return
    if cfg.plot not in (None, True):
        target = check_file_target(str(cfg.plot), "plot")
    else:
        target = folder / "dev_f1.png"
    runs = {
        f"{job['job']}: {job['overrides']}": Path(job["run_dir"]) / "csv" / "metrics.csv"
        for job in jobs
        if (Path(job["run_dir"]) / "csv" / "metrics.csv").is_file()
    }
    if runs:
        plot_dev_f1(runs, target, title=f"dev F1 of {folder.name}")
        log.info("dev F1 curves: %s", target)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="compare.yaml")
@exit_on_user_error
def _main(cfg: DictConfig) -> None:
    compare_runs(cfg)


def main() -> None:
    """``nerlit compare a=A b=B`` (or ``A B``) / ``python -m nerlit.compare ...``."""
    sys.argv = [sys.argv[0], *positional_as_keys(sys.argv[1:])]
    _main()


if __name__ == "__main__":
    main()

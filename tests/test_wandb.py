"""W&B: offline by default, the run's history read back, one finished run per sweep job, resume."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import pytest

from nerlit.commands.train import train
from tests.conftest import REPO_ROOT, compose_train, tiny_overrides


def wandb_records(path: Path) -> Iterator:
    """The records of a ``run-<id>.wandb`` file: what ``wandb sync`` would upload.

    wandb 0.31 ships no reader for its own transaction log; its format is LevelDB's log (32 KiB
    blocks of crc/length/type-framed chunks) behind a 7-byte W&B header, holding protobuf
    ``Record`` messages.
    """
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    ident, _, _ = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B", f"{path} is not a W&B transaction log"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:
            pos += left
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def read_wandb_run(run_folder: Path) -> dict:
    """run id, group, tags, config keys, history rows and exit code of one offline run folder."""
    (log,) = run_folder.glob("run-*.wandb")
    run = {"history": [], "config": {}, "exit_code": None}
    for record in wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(id=record.run.run_id, group=record.run.run_group, tags=list(record.run.tags))
        elif kind == "config":
            run["config"].update({u.key: json.loads(u.value_json) for u in record.config.update})
        elif kind == "history":
            run["history"].append(
                {
                    i.key or "/".join(i.nested_key): json.loads(i.value_json)
                    for i in record.history.item
                }
            )
        elif kind == "exit":
            run["exit_code"] = record.exit.exit_code
    return run


def run_folders(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def flush_wandb() -> None:
    """Stop this process's W&B service: it may still be writing a finished run's log."""
    import wandb

    wandb.teardown()


@pytest.fixture
def wandb_unconfigured(monkeypatch, tmp_path: Path):
    """No API key, no login, no WANDB_MODE: what a user who never set W&B up has."""
    monkeypatch.setenv("WANDB_MODE", "")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield
    flush_wandb()  # stops the W&B service process this test started


def test_offline_run_logs_config_curves_table_and_image(
    gmb_file: Path, tmp_path: Path, wandb_unconfigured
):
    import wandb

    out = tmp_path / "run"
    cfg = compose_train([*tiny_overrides(gmb_file), "logger=wandb", "tags=[smoke,tiny]"], out)
    summary = train(cfg)
    assert os.environ["WANDB_MODE"] == "offline"
    assert wandb.run is None, "the run must be finished at the end of the job"
    flush_wandb()
    (folder,) = run_folders(out)
    run = read_wandb_run(folder)
    assert run["id"] == (out / "wandb_id.txt").read_text() and folder.name.endswith(run["id"])
    assert run["tags"] == ["smoke", "tiny"]
    assert run["exit_code"] == 0
    assert {"data", "model", "optimizer", "trainer", "seed"} <= set(run["config"])
    assert run["config"]["model"]["config_overrides"]["hidden_size"] == 32
    keys = set().union(*run["history"])
    assert {"train/loss", "val/f1", "val/loss", "test/f1"} <= keys
    val_f1 = [row["val/f1"] for row in run["history"] if "val/f1" in row]
    assert val_f1[-1] == pytest.approx(summary["best_val_f1"])
    table = next(row for row in run["history"] if "test/per_type/_type" in row)
    assert table["test/per_type/_type"] == "table-file"
    image = next(row for row in run["history"] if "test/confusion/_type" in row)
    assert image["test/confusion/filenames"][0].endswith(".png")
    assert (out / "confusion.png").is_file()


def test_resumed_run_continues_the_same_wandb_run(
    gmb_file: Path, tmp_path: Path, wandb_unconfigured
):
    out = tmp_path / "run"
    train(compose_train([*tiny_overrides(gmb_file), "logger=wandb"], out))
    resumed = [*tiny_overrides(gmb_file), "logger=wandb", "trainer.max_epochs=2", "ckpt_path=last"]
    summary = train(compose_train(resumed, out))
    assert summary["resumed_from"] == str(out / "checkpoints" / "last.ckpt")
    flush_wandb()
    first, second = (read_wandb_run(f) for f in run_folders(out))
    assert first["id"] == second["id"] == (out / "wandb_id.txt").read_text()
    steps = [row["trainer/global_step"] for row in second["history"] if "train/loss" in row]
    assert min(steps) >= 4, "the resumed run continues after the first run's 4 steps"


class FailAtStep(L.Callback):
    """Fails the job while it trains, before step ``step``, as a bug would (not a config error:
    those stop a job before its W&B run starts)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError(f"failing at step {self.step}")


def test_each_sweep_job_is_its_own_finished_run_failed_ones_marked(gmb_file: Path, tmp_path: Path):
    sweep = tmp_path / "sweep"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nerlit.train",
            "-m",
            *tiny_overrides(gmb_file),
            "logger=wandb",
            "+callbacks.fail._target_=tests.test_wandb.FailAtStep",
            "+callbacks.fail.step=100,1",  # the second job fails at its second step
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0, "Hydra reports the failed job"
    assert "RuntimeError: failing at step 1" in result.stderr
    runs = [read_wandb_run(folder) for job in ("0", "1") for folder in run_folders(sweep / job)]
    assert len(runs) == 2 and runs[0]["id"] != runs[1]["id"]
    assert runs[0]["group"] == runs[1]["group"] == "sweep"
    assert [run["exit_code"] for run in runs] == [0, 1]
    assert any("val/f1" in row for row in runs[0]["history"])
    table = (sweep / "sweep.md").read_text()
    assert "| 1 | 0 | completed | `+callbacks.fail.step=100`" in table
    assert (
        "| 2 | 1 | failed | `+callbacks.fail.step=1` |  |  | RuntimeError: failing at step 1 |"
        in table
    )


def _artifacts(run_folder: Path) -> list:
    (log,) = run_folder.glob("run-*.wandb")
    return [r.artifact for r in wandb_records(log) if r.WhichOneof("record_type") == "artifact"]


def test_offline_run_logs_curves_predictions_table_and_best_checkpoint(
    gmb_file: Path, tmp_path: Path, wandb_unconfigured
):
    out = tmp_path / "run"
    summary = train(compose_train([*tiny_overrides(gmb_file), "logger=wandb"], out))
    flush_wandb()
    (folder,) = run_folders(out)
    run = read_wandb_run(folder)
    keys = set().union(*run["history"])
    assert {"lr-AdamW/pg1", "train/grad_norm", "val/f1/per", "val/f1/geo"} <= keys
    # a sample of test sentences as a table: words, gold and predicted entities, correct?
    row = next(row for row in run["history"] if "test/predictions/_type" in row)
    assert row["test/predictions/_type"] == "table-file"
    table = json.loads((folder / "files" / row["test/predictions/path"]).read_text())
    assert table["columns"] == ["sentence", "words", "gold", "predicted", "correct"]
    predictions = (out / "predictions.conll").read_text().strip().split("\n\n")
    assert len(table["data"]) == min(100, len(predictions)) > 0
    for index, words, gold, predicted, correct in table["data"]:
        lines = [line.split() for line in predictions[index].splitlines()]
        assert words == " ".join(line[0] for line in lines)
        assert correct == (gold == predicted)
    # the best checkpoint as a model artifact, recorded in the offline run folder for wandb sync
    models = [a for a in _artifacts(folder) if a.type == "model"]
    assert len(models) == 1
    (model,) = models
    assert model.name == f"model-{run['id']}" and "best" in model.aliases
    (entry,) = model.manifest.contents
    assert entry.path == "best.ckpt"
    assert entry.size == Path(summary["best_checkpoint"]).stat().st_size
    metadata = json.loads(model.metadata)
    assert metadata["best_val_f1"] == pytest.approx(summary["best_val_f1"])
    assert metadata["checkpoint"] == Path(summary["best_checkpoint"]).name


def test_prediction_sample_is_seeded_and_marks_correct_sentences():
    from nerlit.data.types import Sentence
    from nerlit.experiments.wandb_run import prediction_rows

    tags = ("B-per", "O", "B-geo", "O")
    sentences = [Sentence(("Merkel", "visited", "Paris", str(i)), tags) for i in range(250)]
    gold = [list(s.tags) for s in sentences]
    pred = [list(t) if i % 2 else ["B-per", "O", "B-org", "O"] for i, t in enumerate(gold)]
    rows = prediction_rows(sentences, gold, pred)
    assert len(rows) == 100 and rows == prediction_rows(sentences, gold, pred)
    indices = [row[0] for row in rows]
    assert indices == sorted(set(indices)) and indices != list(range(100))  # drawn, in order
    for index, words, gold_text, predicted, correct in rows:
        assert words == f"Merkel visited Paris {index}"
        assert gold_text == "per: Merkel; geo: Paris"
        assert correct == bool(index % 2)
        assert predicted == (gold_text if index % 2 else "per: Merkel; org: Paris")
    assert len(prediction_rows(sentences[:7], gold[:7], pred[:7])) == 7

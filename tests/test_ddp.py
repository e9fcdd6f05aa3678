"""DDP: sharded batches, metrics over all ranks' predictions, and sweeps that run each job once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nerlit.commands.train import train
from nerlit.data.encoding import LengthGroupedBatchSampler
from tests.conftest import REPO_ROOT, compose_train, tiny_overrides

# ranks of a 2-process CPU run get one thread each; single-process runs are given the same
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def _shards(n: int, batch: int, shuffle: bool, world: int, epoch: int = 0) -> list[list[list[int]]]:
    shards = []
    for rank in range(world):
        sampler = LengthGroupedBatchSampler(
            [(i * 7) % 13 + 1 for i in range(n)],
            batch,
            shuffle,
            seed=3,
            pool_batches=2,
            num_replicas=world,
            rank=rank,
        )
        sampler.set_epoch(epoch)
        assert len(sampler) == len(list(sampler))
        shards.append(list(sampler))
    return shards


@pytest.mark.parametrize("n", [1, 2, 5, 37, 64])
@pytest.mark.parametrize("world", [2, 3])
def test_evaluation_shards_cover_every_window_once(n: int, world: int):
    shards = _shards(n, 8, shuffle=False, world=world)
    windows = [i for shard in shards for batch in shard for i in batch]
    if n >= world:
        assert sorted(windows) == list(range(n)), "no window dropped or repeated"
    else:  # fewer windows than ranks: a repeat, so that no rank misses the epoch-end gather
        assert set(windows) == set(range(n))
    assert all(shard for shard in shards), "every rank gets a batch"
    counts = [len(shard) for shard in shards]
    assert max(counts) - min(counts) <= 1
    single = _shards(n, 8, shuffle=False, world=1)[0]
    if len(single) >= world:  # the same batches as one process, dealt out
        assert sorted(b for shard in shards for b in shard) == sorted(single)


@pytest.mark.parametrize("n", [37, 64, 100])
def test_training_shards_are_disjoint_and_equal_in_length(n: int):
    shards = _shards(n, 4, shuffle=True, world=3)
    assert len({len(shard) for shard in shards}) == 1, "DDP needs the same steps on every rank"
    windows = [i for shard in shards for batch in shard for i in batch]
    assert len(windows) == len(set(windows))
    assert len(windows) > n - 3 * 4
    other_epoch = _shards(n, 4, shuffle=True, world=3, epoch=1)
    assert other_epoch != shards


def test_lightning_sets_the_epoch_of_the_batch_sampler():
    from lightning.fabric.utilities.data import _set_sampler_epoch
    from torch.utils.data import DataLoader

    sampler = LengthGroupedBatchSampler([3] * 10, 2, shuffle=True)
    _set_sampler_epoch(DataLoader(list(range(10)), batch_sampler=sampler), 5)
    assert sampler.epoch == 5


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ddp")
    corpus = root / "gmb.csv"
    from tests.conftest import make_sentences, write_gmb_csv

    write_gmb_csv(corpus, make_sentences(120))
    summary = train(compose_train(tiny_overrides(corpus), root / "trained"))
    return corpus, Path(summary["best_checkpoint"])


def _evaluate(corpus: Path, ckpt: Path) -> list[str]:
    # 12 test sentences in batches of 5: 3 batches, so the two ranks get 2 and 1
    return [
        *tiny_overrides(corpus),
        "train=false",
        f"ckpt_path={ckpt}",
        "data.eval_batch_size=5",
        "trainer.limit_test_batches=null",
        "trainer.precision=32-true",
    ]


@pytest.mark.slow
def test_one_checkpoint_scores_the_same_on_one_and_two_processes(checkpoint, tmp_path: Path):
    corpus, ckpt = checkpoint
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = train(compose_train(_evaluate(corpus, ckpt), tmp_path / "one"))
    finally:
        torch.set_num_threads(threads)
    two_dir = tmp_path / "two"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nerlit.train",
            *_evaluate(corpus, ckpt),
            "trainer=ddp",
            "trainer.devices=2",
            f"hydra.run.dir={two_dir}",
        ],
        cwd=REPO_ROOT,
        env=ONE_THREAD,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    two = json.loads((two_dir / "summary.json").read_text())
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert (two_dir / "train_ddp_rank_1.log").is_file(), "rank 1 ran as this run's job"
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (tmp_path / "one", two_dir)]
    assert metrics[0] == metrics[1]
    assert metrics[0]["micro"]["support"] == 12 * 4, "every gold entity of the 12 test sentences"


#: the ``nerlit`` console script of this environment
NERLIT = str(Path(sys.executable).with_name("nerlit"))


@pytest.mark.parametrize(
    ("command", "strategy"),
    [
        ([NERLIT, "train"], "trainer=ddp"),
        # Lightning's own ddp launcher; slow (16 s each) to keep make test under 10 minutes
        pytest.param([NERLIT, "train"], "trainer.devices=2", marks=pytest.mark.slow),
        pytest.param(
            [sys.executable, "-m", "nerlit.train"], "trainer.devices=2", marks=pytest.mark.slow
        ),
    ],
    ids=["nerlit train trainer=ddp", "nerlit train devices=2", "python -m devices=2"],
)
def test_both_entry_points_launch_their_extra_rank(
    checkpoint, tmp_path: Path, command: list[str], strategy: str
):
    """``nerlit train trainer=ddp`` relaunched "<cwd>/nerlit train" as a script (the console
    script set argv[0] so): rank 1 could not start and rank 0 waited until killed (exit 137)."""
    corpus, ckpt = checkpoint
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [*command, *_evaluate(corpus, ckpt), strategy, f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,  # the user's folder, not the checkout
        env=ONE_THREAD,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "can't open file" not in result.stderr
    assert json.loads((run_dir / "summary.json").read_text())["world_size"] == 2


def test_more_devices_than_the_machine_has_is_one_line_before_any_launch(tmp_path: Path):
    cores = len(os.sched_getaffinity(0))
    result = subprocess.run(
        [NERLIT, "train", "model=tiny", "trainer=ddp", "trainer.accelerator=cpu"]
        + [f"trainer.devices={cores + 97}", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        env=ONE_THREAD,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"nerlit: trainer.devices={cores + 97}: this machine has {cores} CPU cores (one training "
        f"process per device); use trainer.devices={cores} or fewer, or run on a machine with more"
    )
    assert not list((tmp_path / "run").glob("*rank*.log")), "no rank was launched"


@pytest.mark.slow  # long subprocess test: make test-slow; the feature keeps a fast test
def test_ddp_sweep_runs_each_job_once_on_two_processes(gmb_file: Path, tmp_path: Path):
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nerlit.train",
            "-m",
            *tiny_overrides(gmb_file),
            "trainer=ddp",
            "trainer.devices=2",
            "optimizer.lr=1e-4,2e-4",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=REPO_ROOT,
        env=ONE_THREAD,
        capture_output=True,
        text=True,
        timeout=400,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert output.count("Launching 2 jobs") == 1, "a second rank re-ran the sweep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gmb.csv", "sweep"]
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    for job in jobs:
        summary = json.loads((sweep / job / "summary.json").read_text())
        assert summary["world_size"] == 2
        assert (sweep / job / "train_ddp_rank_1.log").is_file()
    assert len((sweep / "sweep.csv").read_text().splitlines()) == 3


def test_slurm_launcher_composes_one_task_per_device():
    cfg = compose_train(
        ["trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2", "hydra/launcher=slurm"],
        with_hydra=True,
    )
    assert cfg.trainer.strategy._target_.endswith("HydraDDPStrategy")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.submitit_folder.endswith("/.submitit/%j")

"""Multi-process training under Hydra: the extra ranks run this job, never the whole sweep.

Lightning's ``ddp`` starts ranks 1..N-1 by re-running the command line. Under ``-m`` that line
holds the whole sweep, so each extra rank re-runs every job of the sweep into a new folder
(lightning-hydra-template #393, Lightning #11300, Hydra #2070). ``ddp_spawn`` avoids the re-run
but trains in processes forked off the job: the module and datamodule are pickled into them,
whatever they compute there (nerlit's test scores and predictions) is lost to the job, ``test``
spawns a second set, and Lightning advises against it on GPUs. So nerlit keeps ``ddp`` and
fixes the one wrong thing, the child command: each extra rank is started as a *single* run
(``hydra.mode=RUN``) of the job's own overrides, writing into the job's directory.
Under torchrun or SLURM the processes exist already, nothing is launched and nothing changes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from unittest import mock

import lightning as L
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers import subprocess_script
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

#: What Lightning's launcher exports into this process's environment to start the children.
LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def is_global_zero() -> bool:
    """Rank 0 (or no distribution), known before a Trainer exists (from the launch environment)."""
    return getattr(rank_zero_only, "rank", 0) == 0


def job_command(local_rank: int) -> tuple[Sequence[str], str]:
    """The command line and working directory that start ``local_rank`` for the current job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    import __main__

    hydra_cfg = HydraConfig.get()
    if __main__.__spec__ is None:
        command = [sys.executable, os.path.abspath(sys.argv[0])]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    for source in hydra_cfg.runtime.config_sources:
        if source.provider == "command-line" and source.schema == "file":
            command += ["--config-dir", source.path]
    command += ["--config-name", hydra_cfg.job.config_name]
    command += list(hydra_cfg.overrides.task)
    command += [
        f'hydra.run.dir="{hydra_cfg.runtime.output_dir}"',
        "hydra.mode=RUN",  # an hparams_search overlay sets MULTIRUN: a rank runs one job
        "hydra.output_subdir=null",  # rank 0 wrote the job's .hydra/ already
        f"hydra.job.name={hydra_cfg.job.name}_ddp_rank_{local_rank}",
    ]
    return command, get_original_cwd()


class _JobScriptLauncher(_SubprocessScriptLauncher):
    def _call_children_scripts(self) -> None:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():  # called from Python, not the CLI: Lightning's way
            super()._call_children_scripts()
            return
        # Lightning builds the Hydra command in one private function; swap it for this call only
        with mock.patch.object(subprocess_script, "_hydra_subprocess_cmd", job_command):
            super()._call_children_scripts()


class HydraDDPStrategy(DDPStrategy):
    """``ddp`` whose extra ranks re-run the current Hydra job only (see the module docstring)."""

    def _configure_launcher(self) -> None:
        super()._configure_launcher()
        if type(self._launcher) is _SubprocessScriptLauncher:
            self._launcher = _JobScriptLauncher(
                self.cluster_environment, self.num_processes, self.num_nodes
            )


@contextmanager
def distributed_job() -> Iterator[list]:
    """Leave the process as the job found it, so the next job of a sweep can launch its ranks.

    Lightning keeps the process group and the ``LOCAL_RANK``... variables it exported; the next
    job would then take ``LOCAL_RANK`` as a sign that its processes were started externally and
    wait forever for ranks nobody starts. Yields a list for the job's trainers: on success their
    child processes are awaited, on failure terminated (they would wait in a collective).
    """
    saved = {name: os.environ.get(name) for name in LAUNCH_VARIABLES}
    trainers: list[L.Trainer] = []
    failed = True
    try:
        yield trainers
        failed = False
    finally:
        for trainer in trainers:
            for process in getattr(trainer.strategy.launcher, "procs", None) or []:
                if failed:
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=600)
                except subprocess.TimeoutExpired:
                    process.kill()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

"""What a run was made with: package versions and the git commit, beside the composed config."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

#: Packages whose version can change a result or its logging.
PACKAGES = (
    "nerlit",
    "torch",
    "lightning",
    "transformers",
    "tokenizers",
    "hydra-core",
    "omegaconf",
    "seqeval",
    "numpy",
    "wandb",
    "optuna",
    "optuna-integration",
    "hydra-submitit-launcher",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions (None: not installed)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


#: A checkout's root when nerlit runs from one (editable install); a wheel has no git state.
SOURCE_ROOT = Path(__file__).resolve().parents[3]


def git_state(root: Path = SOURCE_ROOT) -> dict | None:
    """The checked-out commit of nerlit's source and whether tracked files differ from it; None
    for an installed wheel (no checkout around it).

    ``--no-optional-locks`` keeps ``git status`` from rewriting the index, so recording
    provenance never changes the repository (or races a git command run beside it).
    """
    if not (root / ".git").exists():
        return None
    git = ["git", "--no-optional-locks", "-C", str(root)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def write_provenance(directory: str | Path) -> dict:
    """environment.json: python, platform, command line, package versions and git state."""
    record = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "argv": sys.argv,
        "packages": package_versions(),
        "git": git_state(),
    }
    Path(directory, "environment.json").write_text(json.dumps(record, indent=2))
    return record

"""Re-running a run from its saved config: ``nerlit train rerun=outputs/train/runs/<time>``.

A run folder keeps the config it ran with, composed but unresolved, in ``.hydra/config.yaml``
(Hydra writes it, and ``nerlit.fit`` writes the same file). Re-running reads that file rather
than replaying the run's overrides on today's presets: a preset edited since (a new default
learning rate, another model) would silently change the rerun. Interpolations stay unresolved, so
the new run writes its checkpoints and logs into its own folder, not the old one.

Changes given beside ``rerun=`` are ``key=value`` overrides applied on top of the saved config
(``nerlit train rerun=RUN seed=2``); a group choice (``model=bert-base``) would need the presets'
composition again, so it is refused in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from nerlit.errors import ConfigError

#: the saved config inside a run folder
SAVED_CONFIG = Path(".hydra") / "config.yaml"


def saved_config(run_dir: str | Path) -> DictConfig:
    """The config a run ran with, or one line saying why there is none."""
    run_dir = Path(run_dir).expanduser()
    path = run_dir / SAVED_CONFIG
    if not path.is_file():
        what = "no such folder" if not run_dir.is_dir() else f"it has no {SAVED_CONFIG}"
        raise ConfigError(
            f"rerun={run_dir}: {what}; give the folder of a run of nerlit train "
            f"(outputs/train/runs/<time>, the folder holding summary.json)"
        )
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig) or "model" not in cfg or "data" not in cfg:
        raise ConfigError(f"rerun={run_dir}: {path} is not the config of a nerlit train run")
    return cfg


def rerun_config(cfg: DictConfig, changes: Sequence[str]) -> DictConfig:
    """The saved config of ``cfg.rerun`` with ``changes`` (this command's other overrides)
    applied, writing into this run's folder (``cfg.paths.output_dir``)."""
    saved = saved_config(str(cfg.rerun))
    groups = [c for c in changes if "=" in c and "." not in c.split("=", 1)[0].lstrip("+~")]
    plain_keys = {key for key in saved if not isinstance(saved[key], DictConfig)}
    groups = [c for c in groups if c.split("=", 1)[0].lstrip("+~") not in plain_keys]
    if groups:
        raise ConfigError(
            f"rerun= takes key=value changes on the saved config, not a preset choice "
            f"({', '.join(groups)}); start a new run for another preset"
        )
    edits = [c for c in changes if not c.startswith("rerun=")]
    with open_dict(saved):
        try:
            saved.merge_with_dotlist([c.lstrip("+") for c in edits])
        except Exception as error:  # noqa: BLE001 - OmegaConf's parse errors have many types
            raise ConfigError(f"rerun= changes {edits}: {error}".splitlines()[0]) from None
        saved.rerun = None
        saved.paths.output_dir = str(cfg.paths.output_dir)
    return saved

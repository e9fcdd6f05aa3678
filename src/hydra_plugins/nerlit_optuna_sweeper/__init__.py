"""nerlit's Optuna sweeper for Hydra (``hparams_search=optuna``).

Hydra instantiates sweepers only from the ``hydra_plugins`` namespace package, so the sweeper
lives here rather than in ``nerlit``: ``optuna_sweeper`` holds its config and the thin class
Hydra discovers (no Optuna import, since Hydra imports every plugin module at startup), and
``_impl`` the search itself, imported only when a search runs.
"""

from __future__ import annotations

#: trial user attribute a job sets when its pruner stopped it early (the validation it stopped
#: after; nerlit.experiments.pruning): the job ends normally, the sweeper records it PRUNED
PRUNED_ATTR = "pruned_after_validation"


def register_with_hydra() -> None:
    """Make Hydra know the sweeper also where its plugin scan cannot see this package.

    setuptools' editable installs (``pip install -e``, PEP 660; ``make install``) serve packages
    through an import hook that ``pkgutil.walk_packages`` cannot list, so Hydra's scan of
    ``hydra_plugins`` misses ours (facebookresearch/hydra#2359) and ``hydra/sweeper=optuna``
    would not exist. ``nerlit.config``, which every entry point imports, calls this; where the
    scan found the sweeper (a wheel install) it does nothing.
    """
    from hydra.core.plugins import Plugins

    plugins = Plugins.instance()  # runs Hydra's scan first, once per process
    name = f"{__name__}.optuna_sweeper.OptunaSweeper"
    if name not in plugins.class_name_to_class:
        from .optuna_sweeper import OptunaSweeper  # registers hydra/sweeper=optuna configs

        plugins.register(OptunaSweeper)

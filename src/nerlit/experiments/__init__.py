"""Running many experiments: W&B runs, sweep tables, resuming, DDP under Hydra, provenance.

Each module fixes one known failure of the Lightning + Hydra + W&B stack (see
``../shared/docs/LANDSCAPE.md``, items 5-8); ``nerlit.train`` calls them around ``fit``.
"""

"""nerlit's Hydra configs, shipped in the wheel as the package ``nerlit.conf``."""

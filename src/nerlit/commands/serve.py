"""``nerlit serve ckpt_path=MODEL port=8000``: tag texts over HTTP (:mod:`nerlit.inference.server`).

The verb checks the config, loads and warms the model, and runs uvicorn with the server's app,
batcher, limits and memory release, as ``conf/serve.yaml`` sets them. Why uvicorn + Starlette
and nerlit's batcher rather than LitServe, with measurements: docs/serving.md.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

from nerlit import extras
from nerlit.commands.cli import exit_on_user_error
from nerlit.config import CONFIG_DIR
from nerlit.config_checks import validate
from nerlit.errors import MissingExtraError

if TYPE_CHECKING:
    from nerlit.inference.tagger import Tagger

log = logging.getLogger(__name__)


def load_tagger(cfg: DictConfig) -> Tagger:
    """The Tagger ``cfg`` names: the options of ``conf/tagger/default.yaml``, as predict's."""
    from nerlit.inference.tagger import Tagger

    return Tagger.from_config(cfg)


def require_server_packages() -> None:
    """Stop with the install line before anything imports uvicorn or Starlette."""
    extras.require("nerlit serve")  # uvicorn
    if not extras.installed("starlette"):  # uvicorn installs without it
        _, extra = extras.EXTRAS["nerlit serve"]
        raise MissingExtraError(
            f'nerlit serve needs the {extra} extra: pip install "nerlit[{extra}]"'
        )


def serve(cfg: DictConfig) -> None:
    """Load the model, warm it up, and serve until interrupted (Ctrl+C, SIGTERM)."""
    validate(cfg, "serve")
    require_server_packages()
    import uvicorn

    from nerlit.inference.loading import quiet_transformers
    from nerlit.inference.server import (
        Batcher,
        Limits,
        MemoryReleaser,
        build_app,
        guarded_protocol,
        predict_record,
    )

    quiet_transformers()
    tagger = load_tagger(cfg)
    # the whole path of a request, predict_record's imports included: imported during the first
    # big request, those modules' objects land among its garbage and pin ~100 MB of the small-
    # object allocator's arenas for the life of the server (release_memory)
    warm_up = ["Warm-up: the first call allocates and picks kernels ."]
    json.dumps(list(map(predict_record, warm_up, tagger.predict(warm_up))))
    batcher = Batcher(
        tagger.predict,
        max_batch_size=cfg.max_batch_size,
        batch_timeout=cfg.batch_timeout,
        max_pending=cfg.max_pending,
        refill_timeout=cfg.refill_timeout,
    )
    limits = Limits(cfg.max_texts, cfg.max_chars, cfg.max_headers, float(cfg.body_timeout))
    # the model's name, not its path: /health is public, the server's file layout is not
    info = {"model": Path(str(cfg.ckpt_path)).expanduser().name, "labels": tagger.labels}
    log.info(
        "serving %s on http://%s:%d (POST /predict, GET /health); batches of up to %d texts",
        cfg.ckpt_path,
        cfg.host,
        cfg.port,
        cfg.max_batch_size,
    )
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    uvicorn.run(
        build_app(batcher, limits, info, MemoryReleaser(cfg.release_memory_after)),
        host=cfg.host,
        port=cfg.port,
        log_config=None,  # uvicorn's lines go through the run's logging, as every nerlit line
        log_level=cfg.log_level,
        access_log=cfg.access_log,
        http=guarded_protocol(AutoHTTPProtocol, cfg.header_timeout, cfg.max_header_bytes),
        timeout_keep_alive=cfg.keep_alive_timeout,
        h11_max_incomplete_event_size=cfg.max_header_bytes,  # where h11 is the parser
    )


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="serve.yaml")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    serve(cfg)


if __name__ == "__main__":
    main()

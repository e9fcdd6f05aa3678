"""The mode W&B logs in, decided before a run starts: online where a server answers with a key
for it, offline otherwise, so that a run never hangs on an unreachable W&B host."""

from __future__ import annotations

import logging
import os
import socket
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from nerlit.errors import WandbError

log = logging.getLogger(__name__)

#: Seconds to wait for the W&B server before deciding it is unreachable (wandb itself waits ~110).
WANDB_CONNECT_TIMEOUT = 3.0


@dataclass(frozen=True)
class WandbTarget:
    """Where ``wandb.init`` would log and whether it has credentials there."""

    base_url: str
    #: online, offline, disabled...: from WANDB_MODE or the settings files (``wandb offline``)
    mode: str
    has_credentials: bool


def _netrc_has_key(base_url: str) -> bool:
    """Whether the netrc file wandb reads holds a key for ``base_url`` (wandb's own lookup)."""
    try:
        from wandb.sdk.lib.wbauth.wbnetrc import read_netrc_auth
    except ImportError:  # another wandb layout: the standard netrc lookup of the host
        import netrc

        path = os.environ.get("NETRC") or Path.home() / ".netrc"
        try:
            entry = netrc.netrc(str(path)).authenticators(urlsplit(base_url).netloc)
        except (OSError, netrc.NetrcParseError):
            return False
        return bool(entry and entry[2])
    try:
        return bool(read_netrc_auth(host=base_url))
    except Exception:  # noqa: BLE001 - a malformed key is still a configured one: wandb says why
        return True


def wandb_target() -> WandbTarget:
    """The host, mode and credentials ``wandb.init`` would use, found as wandb finds them.

    The settings files (``~/.config/wandb/settings``, written by ``wandb login --host`` and
    ``wandb offline``; ``WANDB_CONFIG_DIR``) and then the ``WANDB_*`` variables (WANDB_BASE_URL,
    WANDB_MODE, WANDB_API_KEY) give the host and mode; the key comes from the environment, the
    settings or the netrc entry of *that* host, so a self-hosted server counts as configured.
    A fresh ``wandb.Settings`` is used, not wandb's process-wide one: loading that would freeze
    the environment before :func:`configure_wandb_mode` sets WANDB_MODE. Nothing goes over the
    network here.
    """
    import wandb

    environ = {k: v for k, v in os.environ.items() if k.startswith("WANDB_") and v != ""}
    try:
        settings = wandb.Settings(silent=True)  # no "Loading settings from" line twice a run
        config_dir = Path(environ.get("WANDB_CONFIG_DIR", "~/.config/wandb")).expanduser()
        settings.settings_system = str(config_dir / "settings")
        settings.update_from_system_settings()
        settings.update_from_env_vars(environ)
    except Exception as error:  # noqa: BLE001 - wandb's validation: a bad URL or mode
        first = str(error).strip().splitlines()
        raise WandbError(
            f"logger=wandb: the W&B settings are invalid ({first[-1] if first else error}); "
            "check WANDB_BASE_URL / WANDB_MODE and ~/.config/wandb/settings"
        ) from None
    base_url = str(settings.base_url).rstrip("/")
    has_credentials = bool(
        environ.get("WANDB_API_KEY")
        or environ.get("WANDB_IDENTITY_TOKEN_FILE")
        or getattr(settings, "api_key", None)
        or _netrc_has_key(base_url)
    )
    return WandbTarget(base_url, str(settings.mode), has_credentials)


def wandb_reachable(url: str, timeout: float = WANDB_CONNECT_TIMEOUT) -> str | None:
    """None when a TCP connection to ``url``'s host (or the proxy for it) opens within
    ``timeout`` seconds, else why not.

    A connection, not a W&B request: it needs no key and sends nothing. The name lookup runs in
    a thread, since ``getaddrinfo`` ignores socket timeouts and can block for many seconds.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxy_parts.hostname or "", proxy_parts.port or 80
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(error.strerror or str(error) or type(error).__name__)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def configure_wandb_mode() -> str:
    """The mode W&B logs in; sets ``WANDB_MODE=offline`` where online could only hang.

    Online with no network blocks ~110 s, then dies before training, so:

    - not configured (no key for the configured host): offline, as the logger config promises;
    - configured, but the host does not answer within seconds: offline, with one warning (the
      run folder's ``wandb/offline-run-*`` uploads later with ``wandb sync``);
    - ``WANDB_MODE=online`` asked for explicitly: a run that cannot go online stops before any
      work with one line saying why, rather than logging somewhere the user said not to.
    """
    asked = os.environ.get("WANDB_MODE") or None
    if asked not in (None, "online"):  # offline, disabled, dryrun: nothing to reach
        return asked
    target = wandb_target()
    if asked is None and target.mode != "online":  # `wandb offline` in the settings file
        return target.mode
    if not target.has_credentials:
        if asked == "online":
            raise WandbError(
                f"WANDB_MODE=online, but there is no W&B API key for {target.base_url}: run "
                f"`wandb login --host {target.base_url}` or set WANDB_API_KEY, or log offline "
                "(unset WANDB_MODE)"
            )
        os.environ["WANDB_MODE"] = "offline"
        return "offline"
    problem = wandb_reachable(target.base_url)
    if problem is None:
        return "online"
    if asked == "online":
        raise WandbError(
            f"WANDB_MODE=online, but the W&B server {target.base_url} is unreachable "
            f"({problem}): fix the network (or WANDB_BASE_URL), or log offline with "
            "WANDB_MODE=offline and upload later with `wandb sync <run dir>/wandb/offline-run-*`"
        )
    log.warning(
        "W&B server %s is unreachable (%s): this run logs offline; upload it later with "
        "`wandb sync <run dir>/wandb/offline-run-*` (WANDB_MODE=online stops instead)",
        target.base_url,
        problem,
    )
    os.environ["WANDB_MODE"] = "offline"
    return "offline"

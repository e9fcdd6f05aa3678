"""The Hugging Face Hub: a model id resolved through the HF cache, an exported folder pushed.

Both go through ``huggingface_hub`` as every Hub library does, so its settings hold here too:
the token (``HF_TOKEN``, else ``hf auth login``'s), ``HF_ENDPOINT``, the cache (``HF_HOME``,
``HF_HUB_CACHE``) and offline mode (``HF_HUB_OFFLINE=1``). They are read when a call is made, not
when nerlit is imported, so a test (or a caller) that changes them is obeyed. Each failure the
Hub can give is one line naming the id and the fix.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from nerlit.errors import ExportError, ModelLoadError

log = logging.getLogger(__name__)

#: ``org/name`` (or ``user/name``): one slash, the Hub's characters on both sides
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def is_hub_id(name: str) -> bool:
    """Whether ``name`` can only mean a Hub model: ``org/name``, not an existing path, not a
    ``.ckpt`` file. A path that exists always wins, so a local folder named like an id loads."""
    text = str(name)
    if not _REPO_ID.fullmatch(text) or text.endswith(".ckpt") or ".." in text or "--" in text:
        return False
    return not Path(text).expanduser().exists()


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def download_model(repo_id: str) -> Path:
    """The local folder of Hub model ``repo_id``: the HF cache's snapshot, downloaded first
    unless offline. Offline, only a snapshot already in the cache will do."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    offline = _offline()
    try:
        return Path(snapshot_download(repo_id, local_files_only=offline))
    except LocalEntryNotFoundError:
        if offline:
            raise ModelLoadError(
                f"{repo_id}: no such local file or folder, and not in the Hugging Face cache "
                f"({constants.HF_HUB_CACHE}); HF_HUB_OFFLINE=1 forbids downloading it: unset "
                f"HF_HUB_OFFLINE, or pass the path of an exported folder"
            ) from None
        raise ModelLoadError(
            f"{repo_id}: no such local file or folder, and the Hub ({constants.ENDPOINT}) could "
            f"not be reached to download it: check the network, or pass a local path"
        ) from None
    except (RepositoryNotFoundError, GatedRepoError):
        raise ModelLoadError(
            f"{repo_id}: no such local file or folder, and no model repo {repo_id} on "
            f"{constants.ENDPOINT} that this token may read (private or gated repos need "
            f"`hf auth login` or HF_TOKEN)"
        ) from None
    except HfHubHTTPError as error:
        raise ModelLoadError(f"{repo_id}: the Hub refused the download ({_first(error)})") from None


def push_folder(folder: str | Path, repo_id: str, private: bool = False) -> str:
    """Upload ``folder`` whole to Hub model repo ``repo_id`` (created if missing, as a private
    repo with ``private``; an existing repo keeps its visibility) in one commit; its URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    check_push(repo_id)
    api = HfApi()  # now, not at import: the endpoint and token of this moment
    try:
        api.create_repo(repo_id, private=True if private else None, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            commit_message=f"nerlit export: {Path(folder).name}",
        )
    except HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        fix = (
            ": log in with `hf auth login` or set HF_TOKEN to a token that may write to it"
            if status in (401, 403)
            else ""
        )
        raise ExportError(
            f"push_to={repo_id}: the Hub refused the upload ({_first(error)}){fix}; the export "
            f"is written at {folder}"
        ) from None
    except ValueError as error:  # the Hub's check of README.md's metadata, one line per problem
        problems = " ".join(str(error).split())
        raise ExportError(
            f"push_to={repo_id}: {problems}; the export is written at {folder}"
        ) from None
    log.info("pushed %s -> %s", folder, commit.repo_url)
    return str(commit.repo_url)


def check_push(repo_id: str) -> None:
    """Refuse a push that cannot happen before anything is exported: a malformed id, or
    offline mode."""
    if not _REPO_ID.fullmatch(str(repo_id)):
        raise ExportError(f"push_to={repo_id!r}: expected a Hub model id, ORG/NAME or USER/NAME")
    if _offline():
        raise ExportError(
            f"HF_HUB_OFFLINE=1: cannot push to {repo_id}; unset HF_HUB_OFFLINE (and "
            f"TRANSFORMERS_OFFLINE) to upload, or leave out push_to"
        )


def _first(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]

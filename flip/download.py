"""The Hub download helper: one snapshot folder from huggingface_hub, every failure one error.

It sits below both `flip.hub` (models) and `flip.processor` (processors alone), so neither has to
import the other to reach the Hub.
"""

from __future__ import annotations

import os
from pathlib import Path


def download(repo_id: str, revision: str | None = None, allow_patterns=None,
             what: str = "a known flip model, a local path") -> Path:
    """A Hub snapshot's local folder (only `allow_patterns`, None for all); every failure is one
    FileNotFoundError that says `repo_id` is not `what` or a reachable repository."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=allow_patterns))
    except Exception as err:  # offline, unknown repo, gated, malformed id: one message for all
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = " (HF_HUB_OFFLINE=1 is set and it is not in the local cache)" if offline else ""
        raise FileNotFoundError(
            f"{repo_id!r} is not {what}, or a reachable Hub repository{hint}: {type(err).__name__}: {err}"
        ) from None

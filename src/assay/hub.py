"""Push the exported dataset folder to the Hugging Face Hub (`export.push_to_hub: true`).

The token comes from `HF_TOKEN` only and is never logged or written. The repo is created private
unless `export.private` is false; when the commit is a release (a git tag), the Hub commit gets a
tag of the same name, so `load_dataset(repo, revision=<tag>)` and `dvc get --rev <tag>` give the
same version. `HF_ENDPOINT` points the client at another Hub (the tests use a loopback one).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from assay.errors import AssayError

log = logging.getLogger(__name__)


def _api():
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        raise AssayError("export.push_to_hub is true but HF_HUB_OFFLINE=1 is set (the Makefile sets it); "
                         "run `HF_HUB_OFFLINE=0 assay release <tag>` (or `make release TAG=<tag> "
                         "HF_HUB_OFFLINE=0`), or set push_to_hub: false")
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise AssayError("export.push_to_hub is true but HF_TOKEN is not set; export HF_TOKEN=<a write "
                         "token> (read from the environment only, never stored)")
    return HfApi(token=token)


def push(folder: str | Path, repo_id: str, *, private: bool = True, tag: str = "") -> str:
    """Upload `folder` as one commit to dataset repo `repo_id` (created if missing) and tag it.

    Returns the Hub commit id. Raises AssayError on missing token or a failed call, naming it."""
    from huggingface_hub.errors import HfHubHTTPError

    api = _api()
    try:
        user = api.whoami().get("name", "?")
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(folder),
                                   commit_message=f"assay export {tag or '(untagged)'}",
                                   delete_patterns=["data/*", "openai/*"])
        if tag:
            api.create_tag(repo_id, tag=tag, revision=commit.oid, repo_type="dataset", exist_ok=True)
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise AssayError(f"Hub push to {repo_id} failed (HTTP {status}): {exc}; check HF_TOKEN's write "
                         f"access and export.hub_repo") from None
    log.info("pushed %s to %s as %s (commit %s, tag %s)", folder, repo_id, user, commit.oid[:12], tag or "-")
    return commit.oid

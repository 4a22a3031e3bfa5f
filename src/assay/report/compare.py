"""Another revision's run, for `assay report --compare REV`: its metrics from git (`git show
REV:metrics/<stage>.json`) and, when the DVC cache or remote has it, its rejected rows
(`dvc.api.open` at REV) so that rejection reasons compare by rows too."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from assay.errors import AssayError
from assay.report.collect import DEFAULT, STAGES, Paths

HERE = Path(".")


def _git_show(rev: str, path: Path, repo: Path) -> str | None:
    done = subprocess.run(["git", "show", f"{rev}:{path.as_posix()}"], cwd=repo, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def metrics_at(rev: str, paths: Paths = DEFAULT, repo: Path = HERE) -> dict[str, dict[str, Any]]:
    """{stage: metrics} committed at `rev`; AssayError when `rev` is not a revision of this repo."""
    check = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=repo,
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise AssayError(f"--compare {rev}: not a git revision of {repo.resolve()}; give a tag, branch or "
                         f"commit (git tag -l lists the released versions)")
    found = {s: _git_show(rev, paths.metrics / f"{s}.json", repo) for s in STAGES}
    return {s: json.loads(text) for s, text in found.items() if text}


def rejected_at(rev: str, paths: Paths = DEFAULT, repo: Path = HERE) -> tuple[pd.DataFrame | None, str]:
    """(the rejected rows at `rev`, ""), or (None, why they could not be read)."""
    import dvc.api

    try:
        with dvc.api.open(paths.rejected.as_posix(), repo=str(repo), rev=rev, mode="rb") as fh:
            return pd.read_parquet(io.BytesIO(fh.read())), ""
    except Exception as exc:  # noqa: BLE001 - any DVC failure (not cached, no remote) only narrows the comparison
        return None, f"{paths.rejected} at {rev} is in neither the DVC cache nor the remote ({type(exc).__name__})"

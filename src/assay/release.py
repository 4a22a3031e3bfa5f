"""Dataset versions are git tags: `release` makes one (clean workspace, `dvc repro`, `dvc push`,
commit dvc.lock + the git-tracked metrics and plots, tag); `pull` fetches `data/export` at a tag
from the DVC remote; `compare` puts two revisions' metrics side by side.

During `release`, `ASSAY_RELEASE_TAG` tells the stages the tag about to be made (the MLflow run
name, the Hub tag), because the commit is tagged only after the pipeline ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from assay.errors import AssayError

TAG_ENV = "ASSAY_RELEASE_TAG"


def _run(*cmd: str, cwd: str | Path = ".", env: dict[str, str] | None = None,
         check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=capture, text=True)
    except FileNotFoundError as exc:
        raise AssayError(f"`{cmd[0]}` is not installed or not on PATH; activate .venv") from exc
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout or "").strip()[-2000:] if capture else "see the output above"
        raise AssayError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {detail}")
    return done


def git(*args: str, cwd: str | Path = ".", strip: bool = True) -> str:
    """git's stdout (stripped unless `strip` is False), or "" when git or the repository is missing."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    except OSError:
        return ""
    out = done.stdout.strip() if strip else done.stdout
    return out if done.returncode == 0 else ""


def git_commit(cwd: str | Path = ".") -> str:
    return git("rev-parse", "HEAD", cwd=cwd) or "unknown"


def dvc_outputs(dvc_yaml: str | Path = "dvc.yaml") -> list[str]:
    """Every path a stage writes (outs, metrics, plots; cached or not) plus dvc.lock."""
    path = Path(dvc_yaml)
    stages = (yaml.safe_load(path.read_text()) or {}).get("stages", {}) if path.is_file() else {}
    paths = ["dvc.lock"]
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            paths += [p for entry in stage.get(kind, []) for p in (entry if isinstance(entry, dict) else [entry])]
    return paths


def uncommitted(cwd: str | Path = ".") -> list[str]:
    """Files that differ from HEAD (modified, staged, untracked), leaving out what the pipeline
    itself writes (stage outputs, dvc.lock, the .gitignore entries DVC adds): a run that started
    from a clean tree stays clean while it runs."""
    cwd = Path(cwd)
    status = git("status", "--porcelain", "-z", "--no-renames", "--untracked-files=all", cwd=cwd, strip=False)
    outputs = [o.rstrip("/") for o in dvc_outputs(cwd / "dvc.yaml")]
    changed = [entry[3:] for entry in status.split("\0") if entry]
    return [p for p in changed if Path(p).name != ".gitignore"
            and not any(p == o or p.startswith(f"{o}/") for o in outputs)]


def worktree_state(cwd: str | Path = ".", params_file: str | Path = "params.yaml") -> dict[str, Any]:
    """Lineage of a run: `git_commit`, `git_dirty` (uncommitted inputs: params, seeds, code),
    `dirty_files` (up to 20 of them) and `params_sha256` (of the params file's bytes)."""
    dirty = uncommitted(cwd)
    params = Path(cwd, params_file)
    digest = hashlib.sha256(params.read_bytes()).hexdigest() if params.is_file() else "missing"
    return {"git_commit": git_commit(cwd), "git_dirty": bool(dirty), "dirty_files": dirty[:20],
            "params_sha256": digest}


def release_tag(cwd: str | Path = ".") -> str:
    """The tag being released, else a tag on HEAD, else ""."""
    return os.environ.get(TAG_ENV) or git("describe", "--tags", "--exact-match", "HEAD", cwd=cwd)


def git_tracked_outputs(dvc_yaml: str | Path = "dvc.yaml") -> list[str]:
    """Stage outputs declared `cache: false` (metrics, plots): git holds them, not DVC."""
    stages = (yaml.safe_load(Path(dvc_yaml).read_text()) or {}).get("stages", {})
    paths = []
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                if isinstance(entry, dict):
                    paths += [p for p, opts in entry.items() if (opts or {}).get("cache") is False]
    return paths


def _check_clean(cwd: Path, tag: str) -> None:
    if git("rev-parse", "-q", "--verify", f"refs/tags/{tag}", cwd=cwd):
        raise AssayError(f"tag {tag} already exists; pick a new version name (git tag -l lists them)")
    dirty = git("status", "--porcelain", cwd=cwd)
    if dirty:
        raise AssayError(f"the workspace has uncommitted changes; commit or stash them first:\n{dirty}")


def release(tag: str, cwd: str | Path = ".", push: bool = True) -> str:
    """Check clean, `dvc repro`, `dvc push`, commit dvc.lock + git-tracked outputs, tag.

    Pushing before committing means a failed push leaves no tag pointing at data the remote
    lacks; rerun after fixing the remote (the repro is then a no-op). Returns the tagged commit."""
    cwd = Path(cwd)
    _check_clean(cwd, tag)
    env = {**os.environ, TAG_ENV: tag}
    _run("dvc", "repro", cwd=cwd, env=env, capture=False)
    if push:
        _run("dvc", "push", cwd=cwd, capture=False)
    status = _run("git", "status", "--porcelain", "-z", "--untracked-files=all", cwd=cwd).stdout
    changed = [entry[3:] for entry in status.split("\0") if entry]
    wanted = {"dvc.lock", *git_tracked_outputs(cwd / "dvc.yaml")}
    paths = [p for p in changed if p in wanted or Path(p).name == ".gitignore"
             or any(p.startswith(f"{w.rstrip('/')}/") for w in wanted)]
    if paths:
        _run("git", "add", "--", *paths, cwd=cwd)
        _run("git", "commit", "-q", "-m", f"release {tag}: dvc.lock and metrics", cwd=cwd)
    _run("git", "tag", "-a", tag, "-m", f"assay release {tag}", cwd=cwd)
    return git_commit(cwd)


def pull(tag: str, out: str | Path | None = None, repo: str = ".", path: str = "data/export") -> Path:
    """`dvc get <repo> <path> --rev <tag>` into `out` (default `<path name>-<tag>`)."""
    if Path(repo).exists():
        repo = git("rev-parse", "--show-toplevel", cwd=repo) or str(Path(repo).resolve())
    target = Path(out or f"{Path(path).name}-{tag}")
    if target.exists():
        raise AssayError(f"{target} already exists; remove it or pass --out")
    _run("dvc", "get", repo, path, "--rev", tag, "-o", str(target))
    return target


def metrics_diff(rev_a: str, rev_b: str, cwd: str | Path = ".") -> dict[str, dict[str, Any]]:
    """{metrics file: {metric: {old, new}}} from `dvc metrics diff --all`."""
    done = _run("dvc", "metrics", "diff", rev_a, rev_b, "--all", "--json", cwd=cwd)
    return json.loads(done.stdout or "{}")


def format_compare(rev_a: str, rev_b: str, diff: dict[str, dict[str, Any]],
                   runs: dict[str, dict[str, Any]]) -> str:
    """A side-by-side table, changed metrics marked `*`: `dvc metrics diff` rows, then metrics only
    MLflow has (`mlflow:` rows, e.g. for runs whose metrics files were never committed), then the
    MLflow runs found."""
    values = {f"{Path(file).stem}.{name}": (v.get("old"), v.get("new"), v.get("diff"))
              for file, metrics in diff.items() for name, v in metrics.items()}
    a, b = (runs.get(r, {}).get("metrics", {}) for r in (rev_a, rev_b))
    for name in sorted((a.keys() | b.keys()) - values.keys()):
        old, new = a.get(name), b.get(name)
        change = new - old if old is not None and new is not None else None
        values[f"mlflow:{name}"] = (old, new, change)
    rows = [("metric", rev_a, rev_b, "change")]
    for name, (old, new, change) in values.items():
        mark = "*" if old != new else " "
        rows.append((f"{mark}{name}", _fmt(old), _fmt(new), _fmt(change) if change not in (None, 0) else ""))
    rows[1:] = sorted(rows[1:], key=lambda r: (r[0].lstrip("* ").startswith("mlflow:"), r[0].lstrip("* ")))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for rev in (rev_a, rev_b):
        run = runs.get(rev)
        lines.append(f"mlflow {rev}: " + (f"run {run['run_name']} ({run['run_id']})" if run else "no run found"))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

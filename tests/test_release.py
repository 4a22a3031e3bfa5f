"""Versions end to end, without LLM stages: a temporary git + DVC repo whose one-stage pipeline
writes `data/export` from a param, a temporary local DVC remote, two releases with different
params, then pulls of each tag in a fresh clone (`assay pull`, `dvc get`, `git checkout` +
`dvc pull`) that must give each version's exact files; `assay compare` shows the difference."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay.release import format_compare, git_tracked_outputs

MAKE = """
import json, pathlib, yaml
size = yaml.safe_load(open("params.yaml"))["n_rows"]
out = pathlib.Path("data/export"); out.mkdir(parents=True, exist_ok=True)
(out / "rows.txt").write_text("".join(f"row {i}\\n" for i in range(size)))
pathlib.Path("metrics").mkdir(exist_ok=True)
pathlib.Path("metrics/export.json").write_text(json.dumps({"rows": size, "backend": "x"}))
"""
DVC_YAML = """
stages:
  export:
    cmd: python make.py
    deps: [make.py]
    params: [n_rows]  # not `size`: DVC leaves keys named size/nfiles out of its run-cache key
    outs: [data/export]
    metrics:
      - metrics/export.json:
          cache: false
"""


def _sh(cwd: Path, *cmd: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "MLFLOW_TRACKING_URI": ""}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    if ok:
        assert done.returncode == 0, f"{cmd}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


def _assay(cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    return _sh(cwd, sys.executable, "-m", "assay.cli", *args, ok=ok)


def _set_rows(repo: Path, size: int) -> None:
    (repo / "params.yaml").write_text(f"n_rows: {size}\n")
    _sh(repo, "git", "commit", "-qam", f"n_rows {size}")


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """origin repo with tags v1 (3 rows) and v2 (5 rows) released to a local remote."""
    root = tmp_path_factory.mktemp("versions")
    repo = root / "origin"
    repo.mkdir()
    (repo / "make.py").write_text(MAKE)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text("n_rows: 3\n")
    _sh(repo, "git", "init", "-q", "-b", "main")
    _sh(repo, "dvc", "init", "-q")
    _sh(repo, "dvc", "remote", "add", "-d", "store", str(root / "remote"))
    _sh(repo, "git", "add", "-A")
    _sh(repo, "git", "commit", "-qm", "init")
    _assay(repo, "release", "v1")
    _set_rows(repo, 5)
    _assay(repo, "release", "v2")
    return root, repo


@pytest.mark.integration
def test_release_commits_the_lock_and_metrics_and_tags(released):
    _, repo = released
    assert _sh(repo, "git", "status", "--porcelain").stdout == ""
    assert _sh(repo, "git", "tag").stdout.split() == ["v1", "v2"]
    shown = _sh(repo, "git", "show", "v1:metrics/export.json").stdout
    assert json.loads(shown)["rows"] == 3
    assert "data/export" in _sh(repo, "git", "show", "v2:dvc.lock").stdout


@pytest.mark.integration
def test_each_tag_pulls_its_exact_files_in_a_fresh_clone(released):
    root, repo = released
    clone = root / "clone"
    _sh(root, "git", "clone", "-q", str(repo), str(clone))
    expected = {"v1": "".join(f"row {i}\n" for i in range(3)), "v2": "".join(f"row {i}\n" for i in range(5))}
    for tag, text in expected.items():
        _assay(clone, "pull", tag)
        assert (clone / f"export-{tag}" / "rows.txt").read_text() == text
        _sh(root, "dvc", "get", str(repo), "data/export", "--rev", tag, "-o", f"got-{tag}")
        assert (root / f"got-{tag}" / "rows.txt").read_text() == text
        _sh(clone, "git", "checkout", "-q", tag)
        _sh(clone, "dvc", "pull", "-q")
        assert (clone / "data" / "export" / "rows.txt").read_text() == text


@pytest.mark.integration
def test_compare_shows_the_metric_difference(released):
    _, repo = released
    out = _assay(repo, "compare", "v1", "v2").stdout
    line = next(x for x in out.splitlines() if "export.rows" in x)
    assert line.split() == ["*export.rows", "3", "5", "2"]
    assert "mlflow v1: no run found" in out


@pytest.mark.integration
def test_release_refuses_a_dirty_workspace_or_an_existing_tag(released):
    _, repo = released
    done = _assay(repo, "release", "v2", ok=False)
    assert done.returncode == 2 and "tag v2 already exists" in done.stderr
    (repo / "params.yaml").write_text("n_rows: 9\n")
    done = _assay(repo, "release", "v3", ok=False)
    assert done.returncode == 2 and "uncommitted changes" in done.stderr and "params.yaml" in done.stderr
    _sh(repo, "git", "checkout", "params.yaml")


def test_git_tracked_outputs_and_compare_table(tmp_path):
    (tmp_path / "dvc.yaml").write_text(DVC_YAML + "    plots:\n      - p.csv:\n          cache: false\n")
    assert git_tracked_outputs(tmp_path / "dvc.yaml") == ["metrics/export.json", "p.csv"]
    diff = {"metrics/export.json": {"rows": {"old": 3, "new": 5, "diff": 2}, "rate": {"old": 0.5, "new": 0.5}}}
    runs = {"v2": {"run_name": "v2", "run_id": "abc", "metrics": {"export.rows": 5.0, "filter.accepted": 4.0}}}
    table = format_compare("v1", "v2", diff, runs).splitlines()
    assert table[0].split() == ["metric", "v1", "v2", "change"]
    assert table[1].split() == ["export.rate", "0.5", "0.5"] and table[2].split() == ["*export.rows", "3", "5", "2"]
    assert table[3].split() == ["*mlflow:filter.accepted", "-", "4"]
    assert table[-1] == "mlflow v2: run v2 (abc)" and table[-2] == "mlflow v1: no run found"

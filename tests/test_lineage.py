"""Lineage tells the truth: the card and MLflow say when a run's inputs were not committed."""

import hashlib
import shutil
import subprocess
from pathlib import Path

import mlflow
import pytest

from assay import tracking
from assay.release import worktree_state
from tests.test_export import export

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def repo(tmp_path):
    """A committed git repo with the project's dvc.yaml and params.yaml and one seed file."""
    root = tmp_path / "repo"
    (root / "data" / "seeds").mkdir(parents=True)
    shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    (root / "data" / "seeds" / "faq.md").write_text("# FAQ\n")
    for cmd in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v"]):
        subprocess.run(["git", *cmd], cwd=root, check=True, capture_output=True)
    return root


def test_clean_tree_stays_clean_while_the_pipeline_writes_its_outputs(repo):
    (repo / "data" / "export").mkdir(parents=True)
    (repo / "data" / "export" / "README.md").write_text("card")  # a stage output
    (repo / "metrics").mkdir()
    (repo / "metrics" / "ingest.json").write_text("{}")  # a git-tracked metrics output
    (repo / "dvc.lock").write_text("schema: '2.0'\n")
    (repo / ".gitignore").write_text("/data/export\n")  # DVC adds its outs here
    state = worktree_state(repo)
    assert state["git_dirty"] is False and state["dirty_files"] == []
    assert state["params_sha256"] == hashlib.sha256((repo / "params.yaml").read_bytes()).hexdigest()
    assert len(state["git_commit"]) == 40


def test_card_shows_dirty_when_params_or_seeds_are_uncommitted(repo, tmp_path):
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text().replace("seed: 42", "seed: 43"))
    (repo / "data" / "seeds" / "new.md").write_text("# New\n")
    state = worktree_state(repo)
    assert state["git_dirty"] is True and state["dirty_files"] == ["params.yaml", "data/seeds/new.md"]
    export(tmp_path, lineage=state)
    card = (tmp_path / "export" / "README.md").read_text()
    assert "working tree: dirty (uncommitted: `params.yaml`, `data/seeds/new.md`)" in card
    assert f"params file sha256: `{state['params_sha256']}`" in card


def test_card_shows_clean_for_a_committed_tree(repo, tmp_path):
    export(tmp_path, lineage=worktree_state(repo))
    assert "; working tree: clean" in (tmp_path / "export" / "README.md").read_text()


@pytest.mark.integration
def test_mlflow_run_records_commit_dirty_flag_and_params_sha(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    text = (repo / "params.yaml").read_text() + "# edited\n"
    (repo / "params.yaml").write_text(text)
    run_id = tracking.log_stage("ingest", {"chunks": 1}, {}, text)  # sets the tracking URI: build the client after
    run = mlflow.tracking.MlflowClient().get_run(run_id)
    tags = run.data.tags
    assert tags["git.dirty"] == "true" and tags["git.dirty_files"] == "params.yaml"
    assert tags["params.sha256"] == hashlib.sha256(text.encode()).hexdigest() and len(tags["git.commit"]) == 40

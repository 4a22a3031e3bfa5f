"""The real export stage under DVC, without the LLM stages: its inputs (accepted/rejected rows,
upstream metrics, seeds) are plain files in a temporary git + DVC repo whose dvc.yaml holds only
the `export` stage and the plots of the real one. Two releases with different split seeds, then:
MLflow runs named after the tags with the dataset as an input, `assay compare` with both runs,
the card's lineage, `dvc plots show` of the score distribution. (Byte-identical re-export is
tested in test_export.py.)"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _rows(n: int) -> pd.DataFrame:
    return pd.DataFrame([
        {"id": f"s{i:03d}", "task": "qa", "seed_ids": [f"c{i}"], "evidence": ["q"], "evidence_ok": True,
         "generation": json.dumps({"model": "m"}), "error": None, "raw": None, "critique": "{}",
         "score": 3.5 + (i % 4) / 2, "verdict": "accept", "filter": "{}", "reasons": [],
         "messages": [{"role": "user", "content": f"Q{i}?"}, {"role": "assistant", "content": f"A{i}."}]}
        for i in range(n)])


def _sh(repo: Path, *cmd: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "MLFLOW_TRACKING_URI": "",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _set_split_seed(repo: Path, seed: int) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["export"]["splits"]["seed"] = seed
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("export-release") / "repo"
    shutil.copytree(ROOT / "src", repo / "src")
    shutil.copytree(ROOT / "stages", repo / "stages")
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"export": pipeline["stages"]["export"]},
                                                   "plots": pipeline["plots"]}, sort_keys=False))
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")
    rows = _rows(40)
    (repo / "data" / "filtered").mkdir(parents=True)
    rows.to_parquet(repo / "data" / "filtered" / "accepted.parquet")
    rows.head(5).assign(score=1.5, reasons=[["low_score"]] * 5).to_parquet(repo / "data/filtered/rejected.parquet")
    (repo / "data" / "seeds").mkdir()
    (repo / "data" / "seeds" / "faq.md").write_text("# FAQ\n")
    (repo / "metrics").mkdir()
    for stage in ("ingest", "generate", "critique", "filter"):
        (repo / "metrics" / f"{stage}.json").write_text(json.dumps({"samples": 40}))
    (repo / ".gitignore").write_text("mlflow.db\nmlartifacts/\n")
    root = repo.parent
    _sh(root, "git", "init", "-q", "-b", "main", str(repo))
    _sh(repo, "dvc", "init", "-q")
    _sh(repo, "dvc", "remote", "add", "-d", "store", str(root / "remote"))
    _sh(repo, "git", "add", "-A")
    _sh(repo, "git", "commit", "-qm", "init")
    _sh(repo, sys.executable, "-m", "assay.cli", "release", "v1")
    _set_split_seed(repo, 7)
    _sh(repo, "git", "commit", "-qam", "split seed 7")
    _sh(repo, sys.executable, "-m", "assay.cli", "release", "v2")
    return repo


@pytest.mark.integration
def test_mlflow_runs_are_named_after_tags_and_compare_shows_both(repo):
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    parents = {r.info.run_name: r for r in mlflow.search_runs(search_all_experiments=True, output_format="list")
               if "mlflow.parentRunId" not in r.data.tags}
    assert {"v1", "v2"} <= set(parents)
    child = mlflow.search_runs(search_all_experiments=True, output_format="list",
                               filter_string=f"tags.`mlflow.parentRunId` = '{parents['v1'].info.run_id}'")[0]
    names = sorted(i.dataset.name for i in child.inputs.dataset_inputs)
    assert names[0].startswith("export-") and "export-train" in names
    artifacts = {f.path for f in mlflow.tracking.MlflowClient().list_artifacts(child.info.run_id)}
    assert artifacts == {"README.md", "samples.json", "rejections.json"}
    out = _sh(repo, sys.executable, "-m", "assay.cli", "compare", "v1", "v2")
    assert "*export.split.train" in out or "*export.split.test" in out, out
    assert f"mlflow v1: run v1 ({parents['v1'].info.run_id})" in out


@pytest.mark.integration
def test_card_lineage_and_score_plot(repo):
    card = (repo / "data" / "export" / "README.md").read_text()
    commit = _sh(repo, "git", "rev-parse", "v2~1").strip()  # the pipeline ran before the release commit
    assert f"git commit: `{commit}`" in card and "| faq.md |" in card and "seed 7" in card
    plots = json.loads(_sh(repo, "dvc", "plots", "show", "--json"))
    values = plots["data"]["score distribution"][0]["content"]["data"]["values"]
    assert {v["field"] for v in values} == {"accepted", "rejected"}

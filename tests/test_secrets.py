"""Secrets stay in the environment: a whole pipeline run (the dvc.yaml commands, MLflow on) made
with sentinel values in the API-key variable, OPENAI_API_KEY and HF_TOKEN leaves none of them in
any file it writes (Parquet, metrics, MLflow store and artifacts, dataset card, caches, logs) nor
in its output streams. Servers bind 127.0.0.1 only."""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import yaml

from tests.fault_server import ROOT, schema_reply, stage_params
from tests.openai_stub import OpenAIStub

SENTINELS = {"ASSAY_SENTINEL_API_KEY": "sk-sentinel-0a1b2c3d4e5f-api-key",
             "OPENAI_API_KEY": "sk-sentinel-9f8e7d6c5b4a-openai",
             "HF_TOKEN": "hf_sentinel7x7y7zHubToken"}
STAGES = ["ingest", "generate", "critique", "filter", "export"]


def _commands(repo: Path) -> list[list[str]]:
    """The stage commands exactly as dvc.yaml runs them, with this interpreter and ROOT's scripts."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    out = []
    for name in STAGES:
        argv = shlex.split(stages[name]["cmd"])
        assert argv[:2] == ["python", f"stages/{name}.py"], argv
        out.append([sys.executable, str(ROOT / argv[1]), *argv[2:]])
    return out


def _scan(root: Path, streams: str) -> list[str]:
    """Every (file or stream, variable) where a sentinel value shows up, raw bytes."""
    found = [f"streams:{var}" for var, value in SENTINELS.items() if value in streams]
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}:{var}" for var, v in SENTINELS.items() if v.encode() in data]
    return found


@pytest.mark.integration
def test_no_secret_reaches_any_output(tmp_path):
    repo = tmp_path / "repo"
    (repo / "data" / "seeds").mkdir(parents=True)
    for name in ("returns_policy.md", "tickets.jsonl"):
        shutil.copy(ROOT / "data" / "seeds" / name, repo / "data" / "seeds" / name)
    env = {**os.environ, **SENTINELS, "MLFLOW_TRACKING_URI": "", "ASSAY_STATE_DIR": str(repo / ".assay" / "servers")}
    streams = []
    with OpenAIStub([schema_reply]) as stub:
        stage_params(repo / "params.yaml", stub.base_url, repo / ".assay" / "cache",
                     endpoint={"api_key_env": "ASSAY_SENTINEL_API_KEY"},
                     generate={"max_chunks": 4},
                     filter={"require_evidence": False, "domain": {"enabled": False},
                             "dedup": {"semantic": {"enabled": False}},
                             "pii": {"entities": ["EMAIL_ADDRESS", "PHONE_NUMBER"]}})
        for cmd in _commands(repo):
            done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
            streams.append(done.stdout + done.stderr)
            assert done.returncode == 0, f"{cmd[1]}:\n{done.stderr[-3000:]}"
    used = {r.headers.get("authorization") for r in stub.requests}
    assert used == {f"Bearer {SENTINELS['ASSAY_SENTINEL_API_KEY']}"}  # the key was really sent
    written = {p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()}
    assert "mlflow.db" in written and any(p.startswith("mlartifacts/") for p in written), sorted(written)
    assert {"data/export/README.md", ".assay/cache/responses.sqlite"} <= written, sorted(written)
    assert any(p.startswith("data/filtered/") for p in written), sorted(written)
    assert _scan(repo, "\n".join(streams)) == []


def _listening(pid: int) -> set[str]:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    return {c.laddr.ip for p in procs for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


@pytest.mark.integration
def test_embedded_server_listens_on_loopback_only(tmp_path, monkeypatch):
    from assay.llm.server import embedded_server

    monkeypatch.setenv("ASSAY_STATE_DIR", str(tmp_path))
    with embedded_server("smollm2-135m", n_parallel=1, n_ctx=1024, threads=1) as info:
        assert info.owned and info.base_url.startswith("http://127.0.0.1:")
        assert _listening(info.pid) == {"127.0.0.1"}


def test_test_servers_listen_on_loopback_only():
    with OpenAIStub([schema_reply]) as stub:
        assert stub.base_url.startswith("http://127.0.0.1:")
        assert _listening(os.getpid()) <= {"127.0.0.1"}

"""`executor: ray` on a real cluster: a head and a worker node started with `ray start` as separate
processes on 127.0.0.1 (one CPU each), the stage scripts as a user runs them (RAY_ADDRESS), and a
loopback OpenAI stub that counts requests. generate -> critique -> filter in ray mode must write
the same rows in the same order as local mode; a worker killed with -9 mid-stage must not make
the stage fail or repeat a finished call."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("ray")

from assay.scale.local_cluster import local_cluster, processes  # noqa: E402
from tests.fault_server import ROOT, run_script, schema_reply, stage_params, write_chunks  # noqa: E402
from tests.openai_stub import OpenAIStub, error  # noqa: E402

pytestmark = pytest.mark.slow

ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
FILTER = {"dedup": {"against": [], "semantic": {"enabled": False}}, "domain": {"enabled": False},
          "injection": {"embeddings": False}, "rewrite": {"enabled": True, "endpoint": "stub", "style_guide": "Short and warm."},
          "pii": {"entities": ["EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON"], "allow": ["Lumo", "Hearth"],
                  "eval_samples": 0}}


def _ours(temp: Path) -> list[int]:
    """Pids of every process of our cluster: those naming our temp dir, and their descendants."""
    return sorted(processes(temp))


@pytest.fixture(scope="module")
def cluster():
    """RAY_ADDRESS of a head + one worker node (1 CPU each); every process it started is killed after."""
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's unix socket paths must fit
    with local_cluster(temp, object_store_mb=200, env=ENV, timeout=120) as address:
        yield {"RAY_ADDRESS": address, **ENV}, temp


def _params(tmp: Path, base_url: str, executor: str, **ray) -> Path:
    return stage_params(tmp / "params.yaml", base_url, tmp / "cache", endpoint={"concurrency": 2, "timeout_s": 3},
                        executor=executor, ray={"shard_rows": 3, "actors": 2} | ray, filter=FILTER)


def _run(stage: str, tmp: Path, params: Path, chunks: Path, env: dict) -> None:
    args = {"generate": ["--chunks", chunks, "--out", tmp / "samples.parquet", "--lessons", tmp / "none.md"],
            "critique": ["--samples", tmp / "samples.parquet", "--chunks", chunks, "--out", tmp / "judged.parquet",
                         "--lessons", tmp / "lessons.md"],
            "filter": ["--samples", tmp / "judged.parquet", "--chunks", chunks, "--accepted", tmp / "accepted.parquet",
                       "--rejected", tmp / "rejected.parquet"]}[stage]
    done = run_script(stage, "--params", str(params), "--metrics", str(tmp / f"{stage}.json"), *map(str, args),
                      "--responses", str(tmp / f"{stage}-responses.jsonl"), env=env, timeout=300)
    assert done.returncode == 0, f"{stage}: {done.stderr[-3000:]}"


def test_ray_mode_writes_the_same_rows_as_local_mode(cluster, tmp_path):
    env, _ = cluster
    chunks = write_chunks(tmp_path / "chunks.parquet", 8)
    sent = {}
    with OpenAIStub([schema_reply]) as stub:  # one endpoint for both: its URL is part of the sample ids
        for executor in ("local", "ray"):
            out, before = tmp_path / executor, len(stub.bodies)
            out.mkdir()
            params = _params(out, stub.base_url, executor)  # each its own response cache
            for stage in ("generate", "critique", "filter"):
                _run(stage, out, params, chunks, env if executor == "ray" else ENV)
            sent[executor] = Counter(str(b) for b in stub.bodies[before:])
    for name in ("samples", "judged", "accepted", "rejected"):
        local, ray_ = (pd.read_parquet(tmp_path / e / f"{name}.parquet") for e in ("local", "ray"))
        pd.testing.assert_frame_equal(ray_, local, obj=name)
    assert len(pd.read_parquet(tmp_path / "local" / "samples.parquet")) == 8
    for stage in ("generate", "critique", "filter"):  # filter: the rewriter's (none: no stub sample passes the gate)
        local, ray_ = ((tmp_path / e / f"{stage}-responses.jsonl").read_text() for e in ("local", "ray"))
        assert ray_ == local and (local or stage == "filter"), stage
    assert sent["ray"] == sent["local"]  # the same requests, each sent once


def _cached(cache_dir: Path) -> int:
    with contextlib.suppress(sqlite3.OperationalError):
        db = sqlite3.connect(cache_dir / "responses.sqlite", timeout=30)
        try:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        finally:
            db.close()
    return 0


def _shard_workers(temp: Path) -> list[int]:
    """Pids of our cluster's Ray Data actors (their process title names the class)."""
    out = []
    for pid in _ours(temp):
        with contextlib.suppress(OSError):
            if b"ShardWorker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(pid)
    return out


def _wait_cached(cache: Path, at_least: int, proc: subprocess.Popen) -> int:
    deadline = time.monotonic() + 180
    while _cached(cache) < at_least and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the kill should land mid-stage"
    return _cached(cache)


def _quiet(stub: OpenAIStub, seconds: float = 2.0) -> None:
    """Wait until the stub has had no request for `seconds` (a dead driver's actors wind down)."""
    seen, since = len(stub.requests), time.monotonic()
    while time.monotonic() - since < seconds:
        time.sleep(0.1)
        if len(stub.requests) != seen:
            seen, since = len(stub.requests), time.monotonic()


def test_kill_9_of_a_worker_then_of_the_driver_repeats_no_finished_call(cluster, tmp_path):
    """A shard actor killed mid-generate is restarted and retries its shard; the driver killed
    later loses nothing either: the rerun asks only what was never answered. Across two actors
    the endpoint never sees more than its concurrency (2), and a 429 halves it cluster-wide."""
    env, temp = cluster
    n, cache = 24, tmp_path / "cache"
    chunks = write_chunks(tmp_path / "chunks.parquet", n)
    throttled: list[str] = []

    def answer(body: dict):
        if throttled == ["next"]:  # the rerun's first request: rate limited once
            throttled[0] = str(body)
            return error(429, "slow down", {"Retry-After": "0"})
        return schema_reply(body)

    with OpenAIStub([answer], delay=0.5) as stub:
        params = _params(tmp_path, stub.base_url, "ray", shard_rows=12)
        args = ["--params", str(params), "--chunks", str(chunks), "--out", str(tmp_path / "samples.parquet"),
                "--metrics", str(tmp_path / "m.json"), "--lessons", str(tmp_path / "none.md"),
                "--responses", str(tmp_path / "r.jsonl")]
        proc = subprocess.Popen([sys.executable, str(ROOT / "stages" / "generate.py"), *args, "--no-mlflow"],
                                cwd=ROOT, env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_cached(cache, 6, proc)
        victims = _shard_workers(temp)
        assert victims, "no shard actor found"
        os.kill(victims[0], signal.SIGKILL)
        _wait_cached(cache, 14, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _quiet(stub)
        assert _cached(cache) < n, "the driver kill should land mid-stage"
        throttled.append("next")
        rerun = run_script("generate", *args, env=env, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        bodies = Counter(str(b) for b in stub.bodies)
        bodies[throttled[0]] -= 1  # throttled once, then answered: not a repeat
        assert stub.max_in_flight <= 2, stub.max_in_flight  # two actors, one budget of 2 for the endpoint
    rows = pd.read_parquet(tmp_path / "samples.parquet")
    assert len(rows) == n and rows["id"].is_unique and rows["error"].isna().all()
    assert len(bodies) == n
    # only calls in flight at a kill (at most the endpoint's concurrency, 2, per kill) are sent again
    repeated = sum(c - 1 for c in bodies.values())
    assert repeated <= 4, repeated
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == n
    assert json.loads((tmp_path / "m.json").read_text())["llm.stub.concurrency_min"] == 1

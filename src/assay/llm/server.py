"""The embedded llama.cpp server (xllamacpp) on 127.0.0.1: launcher, lifecycle and reuse.

The server runs in its own process (`python -m assay.llm.server`), so a native crash cannot take
a stage down with it and `assay serve` can keep one warm across stages. A running server
announces itself in `<state_dir>/<model>.json` (base_url, pid, model id); a stage reuses it when
it answers /health, else starts its own and stops it on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from assay.errors import AssayError
from assay.llm.weights import resolve_weights

START_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class ServerInfo:
    base_url: str  # ends in /v1
    model_id: str
    pid: int
    owned: bool  # True when this process started it (and will stop it)


def state_dir() -> Path:
    return Path(os.environ.get("ASSAY_STATE_DIR", ".assay/servers"))


def healthy(base_url: str, timeout: float = 2.0) -> bool:
    root = base_url.removesuffix("/v1")
    try:
        return httpx.get(f"{root}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def process_cpu(pid: int) -> float:
    """utime + stime of a live local process in seconds (0.0 when it is gone or unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _read_state(path: Path) -> dict | None:
    try:
        state = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def _write_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


@dataclass(frozen=True)
class Decoding:
    """How the server decodes: `speculative` none | draft (a smaller model of the same tokenizer
    proposes tokens that the served model verifies in one batch) | ngram (proposals copied from
    n-grams already in the context: quotes of the prompt's source); `poll`: how hard idle
    compute threads spin-wait for work (0-100; llama.cpp's default is 50)."""

    speculative: str = "none"
    draft: str | None = None  # registry model key of the draft model (speculative: draft)
    draft_max: int = 8  # tokens proposed per step
    poll: int = 50

    def args(self) -> list[str]:
        out = ["--speculative", self.speculative, "--draft-max", str(self.draft_max), "--poll", str(self.poll)]
        return out + (["--draft", self.draft] if self.draft else [])


def _spawn(model: str, n_parallel: int, n_ctx: int, threads: int, state: Path,
           decoding: Decoding) -> tuple[ServerInfo, subprocess.Popen]:
    log = state.with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "assay.llm.server", "--model", model, "--n-parallel",
           str(n_parallel), "--n-ctx", str(n_ctx), "--threads", str(threads), "--state", str(state),
           "--parent-pid", str(os.getpid()), *decoding.args()]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:]
            raise AssayError(f"embedded server for '{model}' exited with code {proc.returncode} "
                             f"before it was ready; log {log}:\n{tail}")
        found = _read_state(state)
        if found and found["pid"] == proc.pid and healthy(found["base_url"]):
            return ServerInfo(found["base_url"], found["model_id"], proc.pid, owned=True), proc
        time.sleep(0.25)
    proc.kill()
    proc.wait()
    raise AssayError(f"embedded server for '{model}' was not healthy after {START_TIMEOUT_S:.0f} s; see {log}")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s; always reaped (no zombie, no wait on a dead pid)."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def embedded_server(model: str, *, n_parallel: int = 4, n_ctx: int = 8192, threads: int = 2,
                    decoding: Decoding | None = None) -> Iterator[ServerInfo]:
    """Yield a healthy server for registry model `model`: reuse a running one, else start one
    (assembling the model if needed) and stop it on exit. AssayError if it cannot start."""
    decoding = decoding or Decoding()
    resolve_weights(model)  # fail fast, in this process, with the install hint
    if decoding.draft:
        resolve_weights(decoding.draft)
    state = state_dir() / f"{model}.json"
    found = _read_state(state)
    if found and healthy(found["base_url"]):
        yield ServerInfo(found["base_url"], found["model_id"], found["pid"], owned=False)
        return
    info, proc = _spawn(model, n_parallel, n_ctx, threads, state, decoding)
    try:
        yield info
    finally:
        _stop(proc)


def _watch_parent(pid: int, stop: threading.Event) -> None:
    """A stage killed with -9 cannot stop its server: the server stops itself instead."""
    while not stop.wait(2.0):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stop.set()


def _decoding_params(params, decoding: Decoding, threads: int) -> None:
    import xllamacpp

    kinds = xllamacpp.common_speculative_type
    params.cpuparams.poll = params.cpuparams_batch.poll = decoding.poll
    if decoding.speculative == "draft":
        if not decoding.draft:
            raise AssayError("speculative: draft needs `draft:` (a registry model key, e.g. qwen2.5-coder-0.5b)")
        draft = params.speculative.draft
        draft.mparams.path = str(resolve_weights(decoding.draft)[0])
        draft.n_max, draft.n_min = decoding.draft_max, 0
        draft.cpuparams.n_threads = draft.cpuparams_batch.n_threads = threads
        draft.cpuparams.poll = draft.cpuparams_batch.poll = decoding.poll
        params.speculative.types = [kinds.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
    elif decoding.speculative == "ngram":
        params.speculative.ngram_mod.n_max = decoding.draft_max
        params.speculative.types = [kinds.COMMON_SPECULATIVE_TYPE_NGRAM_MOD]


def serve(model: str, n_parallel: int, n_ctx: int, threads: int, state: Path, port: int = 0,
          parent_pid: int | None = None, decoding: Decoding | None = None) -> None:
    """Run a server in this process until SIGTERM/SIGINT (or until `parent_pid` exits);
    announce it in `state`."""
    import xllamacpp  # heavy native import, only in the server process

    path, model_id = resolve_weights(model)
    params = xllamacpp.CommonParams()
    _decoding_params(params, decoding or Decoding(), threads)
    params.model.path = str(path)
    params.hostnames = ["127.0.0.1"]  # loopback only, never a public interface
    params.port = port
    params.n_parallel = n_parallel
    params.n_ctx = n_ctx  # shared by the slots: each gets n_ctx / n_parallel
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.offline = True
    params.model_alias = model
    server = xllamacpp.Server(params)
    base_url = server.listening_address.rstrip("/") + "/v1"
    _write_state(state, {"base_url": base_url, "pid": os.getpid(), "model_id": model_id})
    print(f"assay: serving {model} at {base_url} (Ctrl-C to stop)", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if parent_pid:
        threading.Thread(target=_watch_parent, args=(parent_pid, stop), daemon=True).start()
    stop.wait()
    state.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m assay.llm.server")
    ap.add_argument("--model", required=True)
    ap.add_argument("--n-parallel", type=int, default=4)
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--state", type=Path, required=True)
    ap.add_argument("--parent-pid", type=int, default=None, help="stop when this process exits")
    ap.add_argument("--speculative", choices=["none", "draft", "ngram"], default="none")
    ap.add_argument("--draft", default=None, help="draft model key (--speculative draft)")
    ap.add_argument("--draft-max", type=int, default=8)
    ap.add_argument("--poll", type=int, default=50, help="spin-wait level of idle threads (0-100)")
    args = ap.parse_args(argv)
    decoding = Decoding(args.speculative, args.draft, args.draft_max, args.poll)
    serve(args.model, args.n_parallel, args.n_ctx, args.threads, args.state, args.port, args.parent_pid,
          decoding)
    os._exit(0)  # the native server threads do not join; exit without waiting on them


if __name__ == "__main__":
    main()

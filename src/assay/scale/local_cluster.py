"""A throwaway Ray cluster on 127.0.0.1, for tests and benches: a head and worker nodes started
with `ray start` as separate processes, found and killed afterwards by the temp dir they were
given (never `ray stop`, which would also stop any other Ray cluster on the machine)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
_NODE_PORTS = ("node-manager-port", "object-manager-port", "metrics-export-port", "runtime-env-agent-port",
               "dashboard-agent-listen-port", "dashboard-agent-grpc-port")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _node_flags() -> list[str]:
    return [f"--{n}={p}" for n, p in zip(_NODE_PORTS, free_ports(len(_NODE_PORTS)), strict=True)]


def processes(temp: Path) -> dict[int, tuple[str, float]]:
    """{pid: (command line, CPU seconds)} of the cluster started with `temp`: the processes naming
    it, and their descendants."""
    parent, info, roots = {}, {}, set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            pid = int(proc.name)
            parent[pid], info[pid] = int(stat[1]), (cmd, (int(stat[11]) + int(stat[12])) / TICK)
            if str(temp) in cmd:
                roots.add(pid)
    found, grew = set(roots), True
    while grew:
        kids = {p for p, pp in parent.items() if pp in found} - found
        found |= kids
        grew = bool(kids)
    return {p: info[p] for p in found}


@contextlib.contextmanager
def local_cluster(temp: Path, *, workers: int = 1, object_store_mb: int = 200, env: dict[str, str] | None = None,
                  timeout: float = 180) -> Iterator[str]:
    """A head and `workers` worker nodes, one CPU each; yields the RAY_ADDRESS. `temp` must be a
    short path (Ray's unix socket paths must fit). Every process of the cluster is killed after."""
    ray_bin = str(Path(sys.executable).parent / "ray")
    env = os.environ | {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"} | (env or {})
    [gcs] = free_ports(1)
    common = ["--num-cpus=1", f"--object-store-memory={object_store_mb * 2**20}", "--disable-usage-stats",
              "--node-ip-address=127.0.0.1"]
    try:
        subprocess.run([ray_bin, "start", "--head", f"--port={gcs}", "--include-dashboard=false",
                        f"--temp-dir={temp}", *common, *_node_flags()], env=env, check=True, capture_output=True,
                       timeout=timeout)
        for _ in range(workers):
            subprocess.run([ray_bin, "start", f"--address=127.0.0.1:{gcs}", *common, *_node_flags()],
                           env=env, check=True, capture_output=True, timeout=timeout)
        yield f"127.0.0.1:{gcs}"
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in processes(temp):
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
            time.sleep(1.0)

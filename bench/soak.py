"""Soak: thousands of calls through assay's client against the loopback fault server, with 10% of
requests failing (timeouts, 429/503 + Retry-After, 500, dropped connections, truncated and
malformed JSON, empty choices, finish_reason=length).

    python bench/soak.py                      # 500 and 2,000 calls, 10% faults, concurrency 16
    python bench/soak.py --sizes 500 2000 8000 --rate 0.1

The fault server runs in its own process; each size runs in a fresh client process, so that its
peak RSS (resource.getrusage) is the client's alone. Requests come from a generator (run_batch
consumes it lazily). Prints one row per size: calls/s, peak RSS, and that every request has a
result (none lost) with the errors counted by kind. Flat memory: peak RSS at 2,000 calls within
a few MB of the 500-call run."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(n: int, base_url: str, concurrency: int) -> dict:
    """One soak run in this process; returns its numbers."""
    from assay.llm import ChatRequest, Ledger, run_batch
    from assay.llm.cache import ResponseCache
    from assay.llm.client import OpenAIChat

    with tempfile.TemporaryDirectory() as tmp:
        cache = ResponseCache(tmp)
        chat = OpenAIChat("soak", base_url=base_url, model="stub", api_key="x", model_id="stub@soak",
                          cache=cache, ledger=Ledger(), concurrency=concurrency, timeout_s=1.0, max_retries=6)
        requests = (ChatRequest(messages=[{"role": "user", "content": f"soak request {i}"}], schema=SCHEMA,
                                max_tokens=64) for i in range(n))
        before = _rss_mb()
        start = time.monotonic()
        results = run_batch(chat, requests, desc=f"soak {n}")
        seconds = time.monotonic() - start
        cached = len(cache)
        cache.close()
    kinds = Counter(kind for (_, kind), count in chat.ledger.error_kinds.items() for _ in range(count))
    return {"calls": n, "results": len(results), "ok": sum(r.error is None for r in results),
            "cached": cached, "errors": dict(kinds), "seconds": round(seconds, 2),
            "calls_per_s": round(n / seconds, 1), "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(_rss_mb(), 1), "min_concurrency": chat.limiter.min_limit,
            "final_concurrency": chat.limiter.limit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--rate", type=float, default=0.1, help="fraction of requests that fault")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.base_url, args.concurrency)))
        return
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fault_server.py"), "--rate", str(args.rate),
                               "--seed", "1", "--retry-after", "0.1", "--hang-s", "2"],
                              stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        rows = []
        for n in args.sizes:
            done = subprocess.run([sys.executable, __file__, "--child", str(n), "--base-url", base_url,
                                   "--concurrency", str(args.concurrency)],
                                  capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        server.terminate()
        server.wait()
    print("\n| calls | results | ok | errors (kind: n) | calls/s | RSS before batch | peak RSS | min/final concurrency |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(r["errors"].items())) or "none"
        print(f"| {r['calls']} | {r['results']} | {r['ok']} | {errors} | {r['calls_per_s']} | "
              f"{r['rss_before_mb']} MB | {r['peak_rss_mb']} MB | {r['min_concurrency']}/{r['final_concurrency']} |")


if __name__ == "__main__":
    main()

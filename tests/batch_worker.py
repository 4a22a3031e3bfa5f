"""A client of tests/batch_stub.py that can run in its own process (the crash tests kill it):
`python -m tests.batch_worker BASE_URL CACHE_DIR N MAX_REQUESTS` prints the answers as JSON."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from assay.llm import ChatRequest, Ledger
from assay.llm.batchapi import BatchChat, BatchOptions
from assay.llm.cache import ResponseCache

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def requests(n: int, tag: str = "qa") -> list[ChatRequest]:
    return [ChatRequest(messages=[{"role": "user", "content": f"question {i}"}], schema=SCHEMA, max_tokens=64,
                        tag=tag) for i in range(n)]


def batch_chat(base_url: str, cache: ResponseCache, max_requests: int = 50_000, resubmits: int = 2,
               ledger: Ledger | None = None, **options: float) -> BatchChat:
    opts = BatchOptions(max_requests=max_requests, resubmits=resubmits, poll_s=0.01, poll_max_s=0.05,
                        **options)  # type: ignore[arg-type]
    chat = BatchChat("hosted", batch=opts, base_url=base_url, model="stub-model", api_key="test-key",
                     model_id=f"{base_url}|stub-model", cache=cache, ledger=ledger or Ledger(), max_retries=2,
                     timeout_s=10.0, price_in=2.0, price_out=8.0)
    chat.sleep = lambda seconds: time.sleep(min(seconds, 0.05))  # polls and backoff, shortened
    return chat


def main(base_url: str, cache_dir: str, n: str, max_requests: str) -> None:
    from assay.llm import run_batch

    cache = ResponseCache(Path(cache_dir))
    results = run_batch(batch_chat(base_url, cache, int(max_requests)), requests(int(n)))
    print(json.dumps([r.data for r in results]))


if __name__ == "__main__":
    main(*sys.argv[1:])

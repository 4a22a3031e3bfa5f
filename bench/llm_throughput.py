"""Endpoint utilisation: assay's client (cache off, bounded concurrency, retries, parsing) vs a
raw saturating load with the bare openai client, on the same embedded server, in one run.

    python bench/llm_throughput.py --model qwen2.5-coder-0.5b --requests 24 --slots 4

Prints completion tokens/s of each and their ratio (goal: >= 0.9)."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

import openai

from assay.llm import ChatRequest, Ledger, run_batch
from assay.llm.cache import ResponseCache
from assay.llm.client import OpenAIChat
from assay.llm.server import embedded_server

PROMPT = "Explain in three sentences how a smart thermostat's schedule works. Request {i}."


async def raw_load(base_url: str, model: str, n: int, concurrency: int, max_tokens: int) -> int:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> int:
        async with sem:
            r = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": PROMPT.format(i=i)}],
                max_tokens=max_tokens, temperature=0.7, seed=i)
            return r.usage.completion_tokens

    return sum(await asyncio.gather(*(one(i) for i in range(n))))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--requests", type=int, default=24)
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=96)
    args = ap.parse_args()
    with embedded_server(args.model, n_parallel=args.slots, n_ctx=1024 * args.slots) as info, \
            tempfile.TemporaryDirectory() as tmp:
        asyncio.run(raw_load(info.base_url, args.model, args.slots, args.slots, 8))  # warm-up
        start = time.monotonic()
        raw_tokens = asyncio.run(raw_load(info.base_url, args.model, args.requests, args.slots, args.max_tokens))
        raw_s = time.monotonic() - start
        ledger = Ledger()
        chat = OpenAIChat("bench", base_url=info.base_url, model=args.model, api_key="x",
                          model_id=info.model_id, cache=ResponseCache(tmp), ledger=ledger,
                          concurrency=args.slots)
        reqs = [ChatRequest(messages=[{"role": "user", "content": PROMPT.format(i=i + 10_000)}],
                            temperature=0.7, max_tokens=args.max_tokens, seed=i) for i in range(args.requests)]
        start = time.monotonic()
        results = run_batch(chat, reqs, desc="assay")
        assay_s = time.monotonic() - start
        assay_tokens = sum(r.completion_tokens for r in results)
    raw_rate, assay_rate = raw_tokens / raw_s, assay_tokens / assay_s
    print(f"model={args.model} requests={args.requests} slots={args.slots}")
    print(f"raw openai load : {raw_tokens} tokens in {raw_s:.1f} s = {raw_rate:.1f} tok/s")
    print(f"assay client    : {assay_tokens} tokens in {assay_s:.1f} s = {assay_rate:.1f} tok/s")
    print(f"ratio assay/raw : {assay_rate / raw_rate:.2f}  (goal >= 0.90)")


if __name__ == "__main__":
    main()

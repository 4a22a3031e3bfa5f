"""The generate stage's throughput as a share of what the endpoint can do: completion tokens/s of
the real `assay.generate.generate()` (fresh cache, all four kinds, parsing, grounding checks,
progress bar) vs a saturating raw load with the bare openai client sending the same kind of
requests (same chunks, kinds, schemas and budgets; prompts from another seed so no reply or
prompt prefix is reused), on the same embedded server, in one run.

    python bench/generate.py --model qwen2.5-coder-0.5b --chunks 8 --slots 4

Prints both rates, their ratio (goal >= 0.9), and the run's per-kind counts and evidence rates."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

import openai
import pandas as pd

from assay.config import load_params
from assay.generate import generate, plan, request
from assay.ingest import ingest
from assay.llm import ChatRequest, Ledger
from assay.llm.cache import ResponseCache
from assay.llm.client import OpenAIChat
from assay.llm.server import embedded_server


async def raw_load(base_url: str, model: str, requests: list[ChatRequest], concurrency: int) -> int:
    """Completion tokens of `requests` sent with `concurrency` in flight by the bare client."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=600)
    sem = asyncio.Semaphore(concurrency)

    async def one(req: ChatRequest) -> int:
        async with sem:
            fmt = {"response_format": {"type": "json_schema", "json_schema": {
                "name": req.schema_name, "schema": req.schema}}} if req.schema else {}
            r = await client.chat.completions.create(
                model=model, messages=req.messages, max_tokens=req.max_tokens, temperature=req.temperature,
                seed=req.seed, **fmt)
            return r.usage.completion_tokens

    try:
        return sum(await asyncio.gather(*(one(r) for r in requests)))
    finally:
        await client.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--chunks", type=int, default=8, help="samples to generate (max_chunks)")
    ap.add_argument("--slots", type=int, default=4, help="server slots = client concurrency")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--seeds", default="data/seeds")
    args = ap.parse_args()
    params = load_params(args.params)
    cfg = params.generate.model_copy(update={"max_chunks": args.chunks, "samples_per_chunk": 1})
    chunks = pd.DataFrame(ingest(args.seeds, params.ingest)[0])
    jobs, _ = plan(chunks.to_dict("records"), cfg, params.seed + 1)
    raw_requests = [request(j, cfg, params.seed + 1) for j in jobs]
    with embedded_server(args.model, n_parallel=args.slots, n_ctx=2048 * args.slots) as info, \
            tempfile.TemporaryDirectory() as tmp:
        warm = [ChatRequest(messages=[{"role": "user", "content": f"Say hi {i}."}], max_tokens=4)
                for i in range(args.slots)]
        asyncio.run(raw_load(info.base_url, args.model, warm, args.slots))
        start = time.monotonic()
        raw_tokens = asyncio.run(raw_load(info.base_url, args.model, raw_requests, args.slots))
        raw_s = time.monotonic() - start
        chat = OpenAIChat("bench", base_url=info.base_url, model=args.model, api_key="x", model_id=info.model_id,
                          cache=ResponseCache(tmp), ledger=Ledger(), concurrency=args.slots)
        start = time.monotonic()
        rows, metrics = generate(chunks, chat, cfg, params.seed)
        gen_s = time.monotonic() - start
    gen_tokens = int(sum(v["completion_tokens"] for v in chat.ledger.rows.values()))
    raw_rate, gen_rate = raw_tokens / raw_s, gen_tokens / gen_s
    print(f"model={args.model} samples={len(rows)} slots={args.slots}")
    print(f"raw openai load : {raw_tokens} tokens in {raw_s:.1f} s = {raw_rate:.1f} tok/s")
    print(f"generate stage  : {gen_tokens} tokens in {gen_s:.1f} s = {gen_rate:.1f} tok/s")
    print(f"ratio generate/raw : {gen_rate / raw_rate:.2f}  (goal >= 0.90)")
    for key in sorted(metrics):
        if key.startswith(("per_kind.", "coverage", "evidence_ok_rate", "diversity.")):
            print(f"  {key} = {metrics[key]}")


if __name__ == "__main__":
    main()

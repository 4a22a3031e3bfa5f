"""Decoding options of the embedded server, side by side on the same generate requests: plain
decoding, speculative decoding with a draft model (0.5B proposing for the 1.5B), n-gram
speculation (proposals copied from the prompt), idle threads that sleep instead of spin, and one
compute thread instead of two.

    python bench/decoding.py --chunks 6 --variants plain,t1,t1_draft,t1_ngram

For each variant: a fresh server, a fresh response cache, the real `assay.generate.generate()`
over the same planned jobs (same prompts, schemas, seeds); prints the server's CPU-seconds (from
/proc), wall time, completion tokens, CPU-seconds per 100 completion tokens, and how many
replies parsed and passed the checks under the kinds' JSON schemas. The machine is shared:
compare CPU-seconds, and repeat before trusting a small difference."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from assay.config import load_params
from assay.generate import generate
from assay.ingest import ingest
from assay.llm import Ledger
from assay.llm.cache import ResponseCache
from assay.llm.client import OpenAIChat
from assay.llm.server import Decoding, embedded_server

DRAFT = "qwen2.5-coder-0.5b"
# name: (compute threads, decoding). Two threads meet at a spinning barrier after every operation: on a
# busy CPU the one that waits burns its time slice; one thread never waits.
VARIANTS = {"plain": (2, Decoding()), "draft": (2, Decoding("draft", DRAFT)), "ngram": (2, Decoding("ngram")),
            "poll0": (2, Decoding(poll=0)), "t1": (1, Decoding()), "t1_draft": (1, Decoding("draft", DRAFT)),
            "t1_ngram": (1, Decoding("ngram"))}
TICK = os.sysconf("SC_CLK_TCK")


def cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def one(name: str, model: str, chunks: pd.DataFrame, cfg, seed: int, slots: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ASSAY_STATE_DIR"] = tmp  # never reuse a server started with other options
        threads, decoding = VARIANTS[name]
        with embedded_server(model, n_parallel=slots, n_ctx=2048 * slots, threads=threads,
                             decoding=decoding) as info:
            chat = OpenAIChat("bench", base_url=info.base_url, model=model, api_key="x", model_id=info.model_id,
                              cache=ResponseCache(tmp), ledger=Ledger(), concurrency=slots)
            cpu0, t0 = cpu(info.pid), time.monotonic()
            rows, metrics = generate(chunks, chat, cfg, seed)
            wall, used = time.monotonic() - t0, cpu(info.pid) - cpu0
    tokens = sum(v["completion_tokens"] for v in chat.ledger.rows.values())
    ok = sum(r["error"] is None for r in rows)
    return {"variant": name, "server_cpu_s": round(used, 1), "wall_s": round(wall, 1), "tokens": int(tokens),
            "cpu_s_per_100_tokens": round(100 * used / max(1, tokens), 2), "valid": f"{ok}/{len(rows)}",
            "evidence_ok": metrics.get("evidence_ok_rate"), "load": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--chunks", type=int, default=6, help="samples per variant (max_chunks)")
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--variants", default="plain,draft,ngram")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--seeds", default="data/seeds")
    args = ap.parse_args()
    params = load_params(args.params)
    cfg = params.generate.model_copy(update={"max_chunks": args.chunks, "samples_per_chunk": 1})
    chunks = pd.DataFrame(ingest(args.seeds, params.ingest)[0])
    for name in args.variants.split(","):
        print(one(name, args.model, chunks, cfg, params.seed, args.slots), flush=True)


if __name__ == "__main__":
    main()

"""Chunks -> grounded samples of every task kind the chunk supports, in OpenAI chat format.

Columns in: CHUNK_COLUMNS (a missing `kind` reads as prose). Columns out: GENERATE_COLUMNS
(assay.records: SAMPLE_COLUMNS + the diversity controls). The plan splits
`max_chunks * samples_per_chunk` samples over the enabled kinds by share, each kind drawing from
the chunks that can ground it, least-used chunks first (coverage). A call that fails or a reply
that does not parse keeps its row with `error` and the raw text; the caller decides on the rate.
"""

from __future__ import annotations

import heapq
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from assay import diversity
from assay.config import Generate, Kind
from assay.llm import ChatModel, ChatRequest, ChatResult, Ledger, enforces_schema, run_batch
from assay.llm.client import error_kind
from assay.prompts import agents_words, multi_turn, qa, refusal, task_demo
from assay.prompts.lessons import with_lessons
from assay.records import content_hash

PROMPTS = {"qa": qa, "multi_turn": multi_turn, "task_demo": task_demo, "refusal": refusal}


@dataclass(frozen=True)
class Job:
    chunk: dict[str, Any]
    task: str
    index: int  # the chunk's n-th sample (any kind): part of the sampling seed and the id


def can_ground(task: str, chunk: dict[str, Any]) -> bool:
    """Whether `chunk` can ground a sample of `task`: task demos need an API operation or a
    workflow; refusals need a rule stated in a document (not in a ticket or chat); QA and
    conversations work on any chunk."""
    kind = chunk.get("kind") or "prose"
    if task == "task_demo":
        return kind in ("api_operation", "workflow")
    if task == "refusal":
        return kind in ("prose", "workflow") and refusal.has_policy(chunk["text"])
    return True


def quotas(kinds: dict[str, Kind], total: int) -> dict[str, int]:
    """`total` split by share (largest remainder; ties in declaration order)."""
    weight = sum(k.share for k in kinds.values())
    exact = {name: total * k.share / weight for name, k in kinds.items()}
    out = {name: int(v) for name, v in exact.items()}
    for name in sorted(exact, key=lambda n: out[n] - exact[n])[: total - sum(out.values())]:
        out[name] += 1
    return out


def _interleave(pool: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The pool shuffled within each chunk kind, then taken round-robin across kinds, so that a
    small quota still spans prose, tickets, chats, API operations and workflows."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for chunk in rng.sample(pool, len(pool)):
        by_kind.setdefault(chunk.get("kind") or "prose", []).append(chunk)
    lanes = [by_kind[k] for k in sorted(by_kind)]
    return [lane[i] for i in range(max(map(len, lanes), default=0)) for lane in lanes if i < len(lane)]


def plan(chunks: list[dict[str, Any]], cfg: Generate, seed: int) -> tuple[list[Job], dict[str, int]]:
    """Jobs for every kind's quota, and per-kind shortfalls (no chunk can ground the kind).
    Most constrained kinds pick first; within a kind, unused chunks first in a seeded order;
    at most `max_chunks` distinct chunks (0 = all)."""
    limit = min(cfg.max_chunks or len(chunks), len(chunks))
    want = quotas(cfg.kinds.active(), limit * cfg.samples_per_chunk)
    pools = {t: [c for c in chunks if can_ground(t, c)] for t in want}
    uses: Counter[str] = Counter()
    jobs, short = [], {}
    for task in sorted(want, key=lambda t: (len(pools[t]), t)):
        order = _interleave(pools[task], random.Random(content_hash(seed, task)))
        heap = [(uses[c["chunk_id"]], rank, c["chunk_id"]) for rank, c in enumerate(order)]
        heapq.heapify(heap)
        by_id = {c["chunk_id"]: c for c in order}
        for _ in range(want[task]):
            while heap and uses[heap[0][2]] == 0 and len(uses) >= limit:
                heapq.heappop(heap)  # the distinct-chunk budget is spent: reuse chunks only
            if not heap:
                short[task] = short.get(task, 0) + 1
                continue
            _, rank, cid = heapq.heappop(heap)
            jobs.append(Job(by_id[cid], task, uses[cid]))
            uses[cid] += 1
            heapq.heappush(heap, (uses[cid], rank, cid))
    return jobs, short


def _seed(chunk: dict[str, Any], task: str, index: int, seed: int) -> int:
    """Per-sample sampling seed from the chunk and task, not its position: a changed selection or
    corpus leaves the request (and cache entry) of every sample that is planned again unchanged."""
    return int(content_hash(seed, chunk["chunk_id"], task, index)[:8], 16)


def controls(job: Job, cfg: Generate, seed: int) -> dict[str, str]:
    """The diversity controls of one sample, drawn from params with the sample's own seed."""
    rng = random.Random(_seed(job.chunk, job.task, job.index, seed))
    return {"persona": rng.choice(cfg.personas), "topic": str(job.chunk["section"]),
            "difficulty": rng.choice(cfg.difficulties), "style": rng.choice(cfg.question_styles)}


def sampling(task: str, cfg: Generate) -> dict[str, Any]:
    """Temperature and token budget for a kind (its own, else the generate defaults)."""
    kind = getattr(cfg.kinds, task)
    out = {"temperature": cfg.temperature if kind.temperature is None else kind.temperature,
           "max_tokens": kind.max_tokens or cfg.max_tokens}
    return out | ({"turns": kind.turns} if task == "multi_turn" else {})


def request(job: Job, cfg: Generate, seed: int, lessons: str = "", pick: bool = True) -> ChatRequest:
    """The chat request for one job: the kind's prompt (+ promoted lessons), schema, sampling and
    ledger tag. `pick`: evidence items are an enum of the chunk's sentences (for endpoints that
    enforce JSON schemas), else free quotes that the grounding check verifies."""
    s, ctl = sampling(job.task, cfg), controls(job, cfg, seed)
    text = job.chunk["text"] if pick else None
    if job.task == "multi_turn":
        messages, schema = multi_turn.build(job.chunk, ctl, s["turns"]), multi_turn.schema(s["turns"], text)
    else:
        messages, schema = PROMPTS[job.task].build(job.chunk, ctl), PROMPTS[job.task].schema(text)
    return ChatRequest(messages=with_lessons(messages, lessons), temperature=s["temperature"],
                       max_tokens=s["max_tokens"], schema=schema, schema_name=job.task,
                       seed=_seed(job.chunk, job.task, job.index, seed),
                       tag=job.task)


def _parse(task: str, result: ChatResult, cfg: Generate,
           ctl: dict[str, str]) -> tuple[dict[str, Any] | None, str | None]:
    """The kind's parser, given the sample's controls: an answer that repeats its persona or
    style text is a parse error."""
    if result.error:
        return None, result.error
    if task == "multi_turn":
        return multi_turn.parse(result.data, cfg.kinds.multi_turn.turns, ctl)
    return PROMPTS[task].parse(result.data, ctl)


def row(job: Job, result: ChatResult, model: ChatModel, cfg: Generate, seed: int) -> dict[str, Any]:
    """One GENERATE_COLUMNS row; a failed call or unparsable reply keeps `error` and `raw`."""
    module, ctl = PROMPTS[job.task], controls(job, cfg, seed)
    parsed, error = _parse(job.task, result, cfg, ctl)
    swapped = agents_words(module.to_messages(parsed), job.chunk["text"]) if parsed else None
    if swapped:
        parsed, error = None, swapped
    generation = {"model": model.model_id, "endpoint": model.name, "prompt_version": module.VERSION,
                  **sampling(job.task, cfg), "seed": _seed(job.chunk, job.task, job.index, seed),
                  "chunk_kind": job.chunk.get("kind") or "prose", "prompt_tokens": result.prompt_tokens,
                  "completion_tokens": result.completion_tokens, "round": 0,
                  "call_failed": result.error is not None,  # the endpoint's failure, not the sample's checks
                  "evidence_mode": "pick" if enforces_schema(model) else "quote"}
    return {
        "id": content_hash(job.chunk["chunk_id"], job.task, job.index, module.VERSION, model.model_id),
        "task": job.task,
        "messages": module.to_messages(parsed) if parsed else [],
        "seed_ids": [job.chunk["chunk_id"]],
        "evidence": parsed["evidence"] if parsed else [],
        "evidence_ok": module.grounded(parsed, job.chunk["text"]) if parsed else False,
        "generation": json.dumps(generation, sort_keys=True),
        "error": error,
        "raw": None if parsed else (result.text or ""),
        **ctl,
    }


def complete_jobs(jobs: list[Job], model: ChatModel, cfg: Generate, seed: int,
                  lessons: str = "") -> tuple[list[dict], int]:
    """One GENERATE_COLUMNS row per job, in job order (all kinds in one batch, so the endpoint's
    slots stay busy), and the completion tokens of the calls that were not cached."""
    requests = [request(j, cfg, seed, lessons, enforces_schema(model)) for j in jobs]  # a list: the progress bar knows its total (ETA)
    results = run_batch(model, requests, desc="generate")
    rows = [row(j, r, model, cfg, seed) for j, r in zip(jobs, results, strict=True)]
    return rows, sum(r.completion_tokens for r in results if not r.cached)


def generate(chunks: pd.DataFrame, model: ChatModel | None, cfg: Generate, seed: int, lessons: str = "",
             complete: Callable[[list[Job]], tuple[list[dict], int]] | None = None) -> tuple[list[dict], dict]:
    """Rows for every planned job and generate metrics: counts, error rates, evidence rates,
    coverage and diversity, overall and per kind. `complete` runs the jobs elsewhere (the Ray
    executor, see assay.scale) instead of `complete_jobs` on `model`."""
    records = chunks.to_dict("records")
    jobs, short = plan(records, cfg, seed)
    start = time.monotonic()
    rows, fresh = complete(jobs) if complete else complete_jobs(jobs, model, cfg, seed, lessons)
    seconds = time.monotonic() - start
    metrics = {"chunks_available": len(records), "seconds": round(seconds, 2),
               "completion_tokens_per_s": round(fresh / seconds, 2) if seconds > 0 else 0.0,
               **sample_metrics(rows, len({j.chunk["chunk_id"] for j in jobs}))}
    metrics |= {f"per_kind.{t}.shortfall": n for t, n in sorted(short.items())}
    return rows, metrics


def _counts(rows: list[dict]) -> dict[str, Any]:
    """Counts and rates, and errors by class (`error.<class>`, see assay.llm.client.error_kind:
    a failed call, an unparsable reply, or a parser's named reason such as a repeated turn)."""
    ok = [r for r in rows if r["error"] is None]
    errors = len(rows) - len(ok)
    kinds = Counter(error_kind(r["error"]) for r in rows if r["error"] is not None)
    calls = sum(bool(json.loads(r["generation"]).get("call_failed")) for r in rows if r["error"] is not None)
    return {"samples": len(rows), "parsed": len(ok), "errors": errors, "call_errors": calls,
            "check_rejected": errors - calls, "error_rate": round(errors / max(1, len(rows)), 4),
            "evidence_ok_rate": round(sum(bool(r["evidence_ok"]) for r in ok) / max(1, len(ok)), 4),
            **{f"error.{kind}": n for kind, n in sorted(kinds.items())}}


def _texts(rows: list[dict], role: str) -> list[str]:
    return [m["content"] for r in rows if r["error"] is None for m in r["messages"] if m["role"] == role]


def sample_metrics(rows: list[dict], chunks_used: int) -> dict[str, Any]:
    """Counts, error and evidence rates (overall and per kind), coverage (share of used chunks
    with >= 1 evidence-grounded sample), distinct-1/2 and self-BLEU of questions and answers."""
    grounded = {r["seed_ids"][0] for r in rows if r["error"] is None and r["evidence_ok"]}
    out: dict[str, Any] = {"chunks_used": chunks_used, **_counts(rows),
                           "coverage": round(len(grounded) / max(1, chunks_used), 4)}
    for name, role in (("questions", "user"), ("answers", "assistant")):
        texts = _texts(rows, role)
        out |= {f"diversity.{name}.distinct_1": diversity.distinct_n(texts, 1),
                f"diversity.{name}.distinct_2": diversity.distinct_n(texts, 2),
                f"diversity.{name}.self_bleu": diversity.self_bleu(texts)}
    for task in PROMPTS:
        mine = [r for r in rows if r["task"] == task]
        if mine:
            out |= {f"per_kind.{task}.{k}": v for k, v in _counts(mine).items()}
    return out


def ledger_by_kind(ledger: Ledger) -> dict[str, float]:
    """Tokens, cost and calls per task kind (the ledger's tag), summed over endpoints."""
    out: Counter[str] = Counter()
    for (_, tag), entry in ledger.rows.items():
        for key in ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "cached_completion_tokens",
                    "cost_usd"):
            out[f"ledger.{tag}.{key}"] += entry[key]
    return {k: round(v, 6) for k, v in sorted(out.items())}

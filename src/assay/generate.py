"""Chunks -> grounded QA samples in OpenAI chat format, each citing its chunk and evidence.

Columns in: CHUNK_COLUMNS. Columns out: SAMPLE_COLUMNS. A call that fails or a reply that does
not parse keeps its row with `error` and the raw text; the caller decides on the error rate.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pandas as pd

from assay.config import Generate
from assay.llm import ChatModel, ChatRequest, run_batch
from assay.prompts import qa
from assay.records import content_hash


def select_chunks(chunks: pd.DataFrame, max_chunks: int, seed: int) -> pd.DataFrame:
    """All chunks, or a seeded sample of `max_chunks` spread over the corpus (stable order)."""
    if not max_chunks or len(chunks) <= max_chunks:
        return chunks
    picked = sorted(random.Random(seed).sample(range(len(chunks)), max_chunks))
    return chunks.iloc[picked]


def _seed(chunk: dict[str, Any], index: int, seed: int) -> int:
    """Per-sample sampling seed from the chunk, not its position: a changed selection or corpus
    leaves every other sample's request (and its cache entry) unchanged."""
    return int(content_hash(seed, chunk["chunk_id"], index)[:8], 16)


def _request(chunk: dict[str, Any], index: int, cfg: Generate, seed: int) -> ChatRequest:
    return ChatRequest(messages=qa.build(chunk), temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                       schema=qa.SCHEMA, schema_name="qa_pair", seed=_seed(chunk, index, seed), tag="qa")


def _row(chunk: dict[str, Any], index: int, result, model: ChatModel, cfg: Generate, seed: int) -> dict:
    parsed, error = (None, result.error) if result.error else qa.parse(result.data)
    generation = {"model": model.model_id, "endpoint": model.name, "prompt_version": qa.VERSION,
                  "temperature": cfg.temperature, "max_tokens": cfg.max_tokens, "seed": _seed(chunk, index, seed),
                  "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                  "round": 0}
    evidence = parsed["evidence"] if parsed else []
    return {
        "id": content_hash(chunk["chunk_id"], index, qa.VERSION, model.model_id),
        "task": "qa",
        "messages": qa.to_messages(parsed) if parsed else [],
        "seed_ids": [chunk["chunk_id"]],
        "evidence": evidence,
        "evidence_ok": qa.evidence_ok(evidence, chunk["text"]) if parsed else False,
        "generation": json.dumps(generation, sort_keys=True),
        "error": error,
        "raw": None if parsed else (result.text or ""),
    }


def generate(chunks: pd.DataFrame, model: ChatModel, cfg: Generate, seed: int) -> tuple[list[dict], dict]:
    """One row per (chunk, sample index) and generate metrics (counts, error rate, coverage)."""
    selected = select_chunks(chunks, cfg.max_chunks, seed).to_dict("records")
    jobs = [(chunk, i) for chunk in selected for i in range(cfg.samples_per_chunk)]
    results = run_batch(model, (_request(c, i, cfg, seed) for c, i in jobs), desc="generate")
    rows = [_row(c, i, r, model, cfg, seed) for (c, i), r in zip(jobs, results, strict=True)]
    ok = [r for r in rows if r["error"] is None]
    grounded = {r["seed_ids"][0] for r in ok if r["evidence_ok"]}
    metrics = {
        "chunks_available": len(chunks), "chunks_used": len(selected), "samples": len(rows),
        "parsed": len(ok), "errors": len(rows) - len(ok),
        "error_rate": round((len(rows) - len(ok)) / max(1, len(rows)), 4),
        "evidence_ok_rate": round(sum(r["evidence_ok"] for r in ok) / max(1, len(ok)), 4),
        "coverage": round(len(grounded) / max(1, len(selected)), 4),
        "per_kind.qa": len(rows),
    }
    return rows, metrics

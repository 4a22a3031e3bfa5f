"""generate, critique and filter under `executor: ray`: the same library calls as local mode, on
shards. Each `*_work` runs in an actor on one shard; each driver function gathers the shards (in
input order) into what the local function returns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from assay.config import Critique, Generate, Params
from assay.generate import Job, complete_jobs
from assay.scale import Session


def generate_work(shard: pd.DataFrame, models: dict[str, Any], scores: Any, ctx: dict[str, Any]):
    jobs = [Job(ctx["chunks"][c], t, int(i)) for c, t, i in zip(shard["chunk_id"], shard["task"], shard["index"],
                                                                strict=True)]
    return complete_jobs(jobs, models[ctx["endpoint"]], ctx["cfg"], ctx["seed"], ctx["lessons"])


def generate_jobs(session: Session, jobs: list[Job], cfg: Generate, endpoint: str, seed: int,
                  lessons: str) -> tuple[list[dict], int]:
    """complete_jobs over the cluster: (rows in job order, fresh completion tokens)."""
    frame = pd.DataFrame({"chunk_id": [j.chunk["chunk_id"] for j in jobs], "task": [j.task for j in jobs],
                          "index": [j.index for j in jobs]})
    chunks = {j.chunk["chunk_id"]: j.chunk for j in jobs}
    ctx = {"chunks": chunks, "endpoint": endpoint, "cfg": cfg, "seed": seed, "lessons": lessons}
    parts = session.map(frame, generate_work, ctx)
    return [r for rows, _ in parts for r in rows], sum(fresh for _, fresh in parts)


def critique_work(shard: pd.DataFrame, models: dict[str, Any], scores: Any, ctx: dict[str, Any]):
    from assay.critique import panel_models
    from assay.critique.loop import initial_states, run_rounds, to_frame

    states = initial_states(shard, ctx["chunks"])
    run_rounds(states, panel_models(ctx["cfg"], models, ctx["roles"]), ctx["cfg"])
    return to_frame(shard, states), states


def critique(session: Session, samples: pd.DataFrame, chunks: pd.DataFrame, cfg: Critique, roles: Any):
    """assay.critique.critique over the cluster: (rows, metrics, final states)."""
    from assay.critique.loop import to_frame
    from assay.critique.metrics import critique_metrics

    parts = session.map(samples, critique_work, {"chunks": chunks, "cfg": cfg, "roles": roles})
    judged = pd.concat([f for f, _ in parts], ignore_index=True) if parts else to_frame(samples, [])
    states = [s for _, shard_states in parts for s in shard_states]
    return judged, critique_metrics(states, len(samples), cfg), states


def filter_work(shard: pd.DataFrame, models: dict[str, Any], scores: Any, ctx: dict[str, Any]):
    from assay.filters.decide import rewrite_candidates
    from assay.filters.rewrite import rewrite
    from assay.filters.scoring import score

    params: Params = ctx["params"]
    cfg = params.filter
    rewriter = None
    if cfg.rewrite.enabled:
        def rewriter(samples, analyze, toxic):
            model = models[str(cfg.rewrite.endpoint)]
            return rewrite(samples, rewrite_candidates(samples, cfg), cfg, model, analyze, toxic)
    return score(shard, ctx["chunks"], cfg, scores, rewriter), None


def filter_scores(session: Session, samples: pd.DataFrame, chunks: pd.DataFrame):
    """assay.filters.scoring.score over the cluster (each shard scores its own rows), merged into
    one Scores for all rows. The decision (dedup included) then runs on all rows in the driver."""
    from assay.filters.scoring import Scores

    parts = [s for s, _ in session.map(samples, filter_work, {"params": session.params, "chunks": chunks})]
    if not parts:
        return None
    merged = Scores(pii=[], toxicity=[], toxicity_backend=parts[0].toxicity_backend)
    for part in parts:
        merged.pii += part.pii
        merged.toxicity += part.toxicity
        merged.rechecks |= part.rechecks
        merged.rewrites += part.rewrites
        merged.injection += part.injection
        merged.seed_instructions |= part.seed_instructions
    if parts[0].vectors is not None:
        merged.vectors = np.vstack([p.vectors for p in parts])
    merged.chunk_vectors = parts[0].chunk_vectors  # every shard embeds the same chunks
    return merged

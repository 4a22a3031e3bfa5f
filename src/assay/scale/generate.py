"""generate under `executor: ray`: the planned jobs in shards, each shard through
assay.generate.complete_jobs in an actor; rows come back in job order."""

from __future__ import annotations

from typing import Any

import pandas as pd

from assay.config import Generate
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

"""filter under `executor: ray`: every scorer (and the tone rewriter) runs on shards in actors;
the decision runs on all rows in the driver.

Dedup needs every row: `assay.filters.decide` calls assay.filters.dedup on the gathered rows,
as in local mode. A shard-aware dedup (signatures per shard, LSH bands by a shuffle) plugs in
there, between `filter_scores` and the decision."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from assay.config import Params
from assay.scale import Session


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

"""The whole filter step for the stage: references, scores (cached), decision, metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from assay.config import Params
from assay.filters import pii_eval, rewrite, sources
from assay.filters.decide import decide, rewrite_candidates
from assay.filters.report import metrics
from assay.filters.reviews import Review, decisions
from assay.filters.scores import ScoreCache
from assay.filters.scoring import pii_scorer, score


def _rewriter(params: Params, ledger: Any, responses: str | Path):
    """assay.filters.rewrite bound to the endpoint in params (server starts on a cache miss)."""
    from assay import roles
    from assay.llm import open_models

    cfg = params.filter

    def run(samples: pd.DataFrame, analyze, toxic) -> list[dict | None]:
        name = str(roles.rewriter(cfg.rewrite))
        with open_models(params, [name], ledger, responses=responses) as models:
            return rewrite.rewrite(samples, rewrite_candidates(samples, cfg), cfg, models[name], analyze, toxic)

    return run


def run_filter(samples: pd.DataFrame, chunks: pd.DataFrame, params: Params, cache: ScoreCache,
               responses: str | Path, session: Any = None, *,
               reviews: list[Review] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Decided samples (`messages` possibly redacted or rewritten, `filter`, `reasons`) and the
    stage metrics. Reference files (`filter.dedup.against`: released versions; `eval_sets`) are
    read before anything is written. `responses` is the rewriter's responses file (see
    assay.llm.open_models), emptied when rewriting is off. `session` (assay.scale, `executor:
    ray`): the scorers and the rewriter run on its actors, shard by shard; the decision, dedup
    included, runs here on all rows. `reviews`: human decisions (assay.filters.reviews), applied
    last; those about ids not in `samples` are counted as `review.unmatched`."""
    from assay.llm import Ledger

    cfg, ledger = params.filter, session.ledger if session else Ledger()
    refs, evals = _references(params, responses)
    if session is not None and len(samples):
        from assay.scale.filter import filter_scores

        scores = filter_scores(session, samples, chunks)
        cache.hits, cache.misses = cache.hits + session.score_counts[0], cache.misses + session.score_counts[1]
    else:
        scores = score(samples, chunks, cfg, cache,
                       _rewriter(params, ledger, responses) if cfg.rewrite.enabled else None)
    counted = decisions(reviews or [])
    decided = decide(samples, scores, cfg, pii_scorer(cfg, cache), refs, evals, counted)
    extras = _extras(params, cache, refs, evals)
    out = metrics(decided, scores.toxicity_backend, cache) | extras  # cache counts include the PII eval
    out["review.unmatched"] = len(set(counted) - set(samples["id"]))
    if cfg.rewrite.enabled:
        out |= ledger.flat("rewrite_llm")
    return decided, out


def run_filter_stream(samples: str | Path, chunks: pd.DataFrame, params: Params, cache: ScoreCache,
                      responses: str | Path, accepted: str | Path, rejected: str | Path,
                      batch_rows: int = 10_000) -> dict[str, Any]:
    """`run_filter` batch by batch from the samples file to the accepted and rejected files
    (assay.filters.stream; only when `stream.streams(params.filter)`); returns the metrics."""
    from assay.filters import stream

    refs, evals = _references(params, responses)
    rules = {"recheck": pii_scorer(params.filter, cache), "refs": refs, "evals": evals}
    extras = _extras(params, cache, refs, evals)  # first: the cache counts include the PII eval
    return stream.filter_stream(samples, chunks, params.filter, cache, rules, accepted, rejected,
                                batch_rows=batch_rows) | extras | {"review.unmatched": 0}


def _references(params: Params, responses: str | Path) -> tuple[tuple, tuple]:
    """(previous versions, eval sets) as (texts, ids); empties the responses file when rewriting
    is off (it then records no call)."""
    cfg = params.filter
    if not cfg.rewrite.enabled:
        Path(responses).parent.mkdir(parents=True, exist_ok=True)
        Path(responses).write_text("", encoding="utf-8")
    return sources.load_texts(cfg.dedup.against), sources.load_texts(cfg.dedup.eval_sets)


def _extras(params: Params, cache: ScoreCache, refs: tuple, evals: tuple) -> dict[str, Any]:
    """The PII evaluation (when `pii.eval_samples`) and the reference sizes."""
    cfg, out = params.filter, {}
    if cfg.pii.eval_samples:
        data = pii_eval.labelled_set_cached(cfg.pii.eval_samples, params.seed, params.llm.cache_dir)
        out = pii_eval.evaluate(data, pii_scorer(cfg, cache), cfg.pii)
    return out | {"dedup.against_rows": len(refs[0]), "dedup.eval_rows": len(evals[0])}

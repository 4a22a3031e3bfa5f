"""The filter stage: scorers score (cached), one step decides with the thresholds in params.

Columns in: CRITIQUE_COLUMNS. Columns out: + filter (JSON: pii findings, toxicity scores,
duplicate_of, scorer versions) and reasons (list of str; empty when kept).
Rejection reasons, in order: generation_error, critique_<verdict>, evidence_not_in_chunk,
pii:<ENTITY>, toxic:<label>, duplicate.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pandas as pd

from assay.config import Filter
from assay.filters import dedup
from assay.filters.pii import SCORER_VERSION as PII_VERSION
from assay.filters.pii import PiiScorer
from assay.filters.scores import ScoreCache
from assay.filters.toxicity import make_scorer
from assay.records import messages_text


def score(samples: pd.DataFrame, cfg: Filter, cache: ScoreCache) -> tuple[list[list[dict]], list[dict], str]:
    """PII findings and toxicity scores per row (models load only on cache misses)."""
    texts = [messages_text(m) for m in samples["messages"]]
    pii_key = f"{PII_VERSION}|{cfg.pii.spacy_model}|{','.join(sorted(cfg.pii.entities))}"
    pii = cache.scores(pii_key, texts, lambda t: PiiScorer(cfg.pii.entities, cfg.pii.spacy_model).analyze(t))
    tox = cfg.toxicity
    scorer = make_scorer(tox.backend, model_type=tox.model_type, checkpoint=tox.checkpoint,
                         huggingface_config_path=tox.huggingface_config_path)
    toxicity = cache.scores(scorer.version, texts, scorer.score)
    return pii, toxicity, scorer.name


def pii_hits(text: str, findings: list[dict], threshold: float, allow: list[str]) -> list[str]:
    """Entities at or above threshold whose matched span names none of the allowed terms
    (product and company names that NER mistakes for people)."""
    allowed = [a.casefold() for a in allow]
    return sorted({f["entity"] for f in findings if f["score"] >= threshold
                   and not any(a in text[f["start"]:f["end"]].casefold() for a in allowed)})


def _reasons(row: Any, pii: list[dict], toxicity: dict[str, float], cfg: Filter) -> list[str]:
    reasons = []
    if isinstance(row.error, str):
        reasons.append("generation_error")
    elif row.verdict != "accept":
        reasons.append(f"critique_{row.verdict}")
    if not isinstance(row.error, str) and cfg.require_evidence and not row.evidence_ok:
        reasons.append("evidence_not_in_chunk")
    text = messages_text(row.messages)
    reasons += [f"pii:{e}" for e in pii_hits(text, pii, cfg.pii.threshold, cfg.pii.allow)]
    reasons += sorted(f"toxic:{label}" for label, p in toxicity.items() if p >= cfg.toxicity.threshold)
    return reasons


def decide(samples: pd.DataFrame, pii: list[list[dict]], toxicity: list[dict], cfg: Filter) -> pd.DataFrame:
    """Apply thresholds and dedup; return samples with `filter` and `reasons` columns.

    Dedup runs over the rows that pass every other rule, keeping the best-scored representative."""
    reasons = [_reasons(row, p, t, cfg) for row, p, t in zip(samples.itertuples(), pii, toxicity, strict=True)]
    alive = [i for i, r in enumerate(reasons) if not r]
    texts = [messages_text(samples["messages"].iloc[i]) for i in alive]
    quality = [float(samples["score"].iloc[i]) for i in alive]
    d = cfg.dedup
    dup_of = dedup.find_duplicates(texts, quality, threshold=d.threshold, lsh_threshold=d.lsh_threshold,
                                   num_perm=d.num_perm, ngram=d.ngram)
    duplicate_of: dict[int, str] = {}
    for pos, rep in enumerate(dup_of):
        if rep is not None:
            duplicate_of[alive[pos]] = samples["id"].iloc[alive[rep]]
            reasons[alive[pos]].append("duplicate")
    out = samples.copy()
    out["filter"] = [json.dumps({"pii": p, "toxicity": t, "duplicate_of": duplicate_of.get(i)}, sort_keys=True)
                     for i, (p, t) in enumerate(zip(pii, toxicity, strict=True))]
    out["reasons"] = reasons
    return out


def metrics(decided: pd.DataFrame, toxicity_backend: str, cache: ScoreCache) -> dict[str, Any]:
    counts = Counter(r.split(":")[0] if r.startswith("pii:") else r for rs in decided["reasons"] for r in rs)
    detail = Counter(r for rs in decided["reasons"] for r in rs)
    kept = int(sum(not r for r in decided["reasons"]))
    return {
        "input": len(decided), "accepted": kept, "rejected": len(decided) - kept,
        "accept_rate": round(kept / max(1, len(decided)), 4),
        "toxicity_backend": toxicity_backend,
        "score_cache.hits": cache.hits, "score_cache.misses": cache.misses,
        **{f"reason.{k}": v for k, v in sorted(counts.items())},
        **{f"reason_detail.{k}": v for k, v in sorted(detail.items()) if ":" in k},
    }

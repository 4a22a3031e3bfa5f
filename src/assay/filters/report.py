"""The filter stage's flat metrics: rows per reason, dedup ratio, domain-score distribution,
toxicity flags, redactions, rewrites, the score cache's hits and misses, and how often human
reviewers agreed with the machine decision."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pandas as pd

from assay.filters.decide import DUPLICATE_REASONS, domain_summary
from assay.filters.scores import ScoreCache


def _dedup_ratio(reasons: pd.Series) -> dict[str, float]:
    """Share of the rows that reached dedup (no other reason) that a dedup rule removed."""
    reached = [rs for rs in reasons if all(r in DUPLICATE_REASONS for r in rs)]
    removed = sum(1 for rs in reached if rs)
    return {"dedup.candidates": len(reached), "dedup.removed": removed,
            "dedup.ratio": round(removed / max(1, len(reached)), 4)}


def _coverage(decided: pd.DataFrame) -> dict[str, Any]:
    """`coverage`: share of the chunks used upstream that produced >= 1 accepted sample (issue 3's
    definition), and `accepted_per_kind.<task>`: the mix that survived."""
    if "seed_ids" not in decided or "task" not in decided:
        return {}
    kept = [not r for r in decided["reasons"]]
    used = {c for ids in decided["seed_ids"] for c in ids}
    covered = {c for ids, k in zip(decided["seed_ids"], kept, strict=True) if k for c in ids}
    per_kind = Counter(t for t, k in zip(decided["task"], kept, strict=True) if k)
    return {"coverage": round(len(covered) / max(1, len(used)), 4),
            **{f"accepted_per_kind.{t}": per_kind.get(t, 0) for t in sorted(set(decided["task"]))}}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _agreement(prefix: str, pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    """`<prefix>.agreed` / `.disagreed` / `.agreement` over (person keeps, machine keeps) pairs."""
    agreed = sum(1 for person, machine in pairs if person == machine)
    return {f"{prefix}.agreed": agreed, f"{prefix}.disagreed": len(pairs) - agreed,
            f"{prefix}.agreement": _share(agreed, len(pairs))}


def review_metrics(info: list[dict]) -> dict[str, Any]:
    """Agreement of human reviews with the machine decision, from each row's `filter.human`.
    `review.agreed` / `.disagreed` / `.agreement`: reviewed rows where person and pipeline made the
    same keep/drop call; `review.critique.*`: the same against the critique verdict alone (accept = keep);
    per machine reason kind R (a row counts once per kind), `review.reason.R.agreed` (the person
    rejected too) / `.disagreed` / `.agreement`, and `review.kept.*` for rows the machine kept.
    `review.accepts_overridden` (and `.overridden.R`): accepts not honoured (PII, injection)."""
    humans = [x["human"] for x in info if x.get("human")]
    out: dict[str, Any] = {
        "review.reviewed": len(humans), "review.accepted": sum(h["decision"] == "accept" for h in humans),
        "review.rejected": sum(h["decision"] == "reject" for h in humans),
        "review.accepts_honoured": sum(1 for h in humans if h["decision"] == "accept" and h["machine_reasons"]
                                       and not h["overridden"]),
        "review.accepts_overridden": sum(1 for h in humans if h["overridden"]),
    }
    if not humans:
        return out
    overridden = Counter(k for h in humans for k in {r.split(":")[0] for r in h["overridden"]})
    out |= {f"review.overridden.{k}": v for k, v in sorted(overridden.items())}
    out |= _agreement("review", [(h["decision"] == "accept", not h["machine_reasons"]) for h in humans])
    out |= _agreement("review.critique", [(h["decision"] == "accept", h.get("verdict") == "accept")
                                          for h in humans if h.get("verdict")])
    kinds = sorted({k for h in humans for k in {r.split(":")[0] for r in h["machine_reasons"]}})
    for kind in ["kept", *kinds]:
        pairs = [(h["decision"] == "accept", kind == "kept") for h in humans
                 if kind in ({r.split(":")[0] for r in h["machine_reasons"]} or {"kept"})]
        if pairs:
            out |= _agreement("review.kept" if kind == "kept" else f"review.reason.{kind}", pairs)
    return out


def metrics(decided: pd.DataFrame, toxicity_backend: str, cache: ScoreCache) -> dict[str, Any]:
    """One flat dict for metrics/filter.json. `reason.R`: rows rejected for reason kind R (a row
    with two PII findings counts once under `reason.pii`); `reason_detail.R:X`: rows per detail."""
    reasons = decided["reasons"]
    counts = Counter(k for rs in reasons for k in {r.split(":")[0] for r in rs})
    detail = Counter(r for rs in reasons for r in set(rs) if ":" in r)
    info = [json.loads(f) for f in decided["filter"]]
    kept = int(sum(not r for r in reasons))
    rewrites = Counter(x.get("rewrite", {}).get("status", "none") for x in info)
    return {
        "input": len(decided), "accepted": kept, "rejected": len(decided) - kept,
        "accept_rate": round(kept / max(1, len(decided)), 4),
        "toxicity_backend": toxicity_backend,
        "pii.redacted_rows": sum(1 for x, rs in zip(info, reasons, strict=True) if x["redacted"] and not rs),
        **{f"rewrite.{k}": v for k, v in sorted(rewrites.items()) if k != "none"},
        "score_cache.hits": cache.hits, "score_cache.misses": cache.misses,
        **_dedup_ratio(reasons), **domain_summary(decided), **_coverage(decided),
        **{f"reason.{k}": v for k, v in sorted(counts.items())},
        **{f"reason_detail.{k}": v for k, v in sorted(detail.items())},
        **review_metrics(info),
    }

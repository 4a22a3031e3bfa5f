"""The judge panel: every judge scores every sample against its cited source; the deterministic
verifier votes beside them; aggregation and inter-judge agreement."""

from __future__ import annotations

from itertools import combinations
from statistics import mean
from typing import Any

from scipy.stats import spearmanr

from assay.config import Critique
from assay.llm import ChatModel, ChatRequest, run_batch
from assay.prompts import judge


def judge_all(model: ChatModel, conversations: list[list[dict]], sources: list[str], cfg: Critique,
              round_: int) -> list[dict[str, Any]]:
    """One judgement per sample from one judge; failures are kept with `error` (never raised)."""
    requests = [ChatRequest(messages=judge.build(src, msgs), temperature=cfg.temperature,
                            max_tokens=cfg.max_tokens, schema=judge.SCHEMA, schema_name="judgement",
                            seed=0, tag="judge")
                for src, msgs in zip(sources, conversations, strict=True)]
    out = []
    for result in run_batch(model, requests, desc=f"critique r{round_} [{model.name}]"):
        parsed, error = (None, result.error) if result.error else judge.parse(result.data)
        out.append({"judge": model.name, "model": model.model_id, "error": error,
                    **(parsed or {"raw": (result.text or "")[:1000]})})
    return out


def aggregate(judgements: list[dict], verifier: dict | None, cfg: Critique) -> dict[str, Any]:
    """Per-criterion mean and min over the judges that answered, blended with the verifier:
    aggregate = (1 - w) * judge mean + w * verifier score. None when nobody could score."""
    ok = [j for j in judgements if j.get("error") is None]
    criteria = {c: round(mean(j["scores"][c] for j in ok), 4) for c in judge.CRITERIA} if ok else {}
    minimum = {c: min(j["scores"][c] for j in ok) for c in judge.CRITERIA} if ok else {}
    judge_mean = mean(criteria.values()) if ok else None
    if verifier is None:
        score = judge_mean
    elif judge_mean is None:
        score = verifier["score"]
    else:
        score = (1 - cfg.verifier_weight) * judge_mean + cfg.verifier_weight * verifier["score"]
    return {"criteria": criteria, "criteria_min": minimum, "judge_mean": judge_mean,
            "aggregate": None if score is None else round(score, 4)}


def agreement(per_judge: dict[str, list[float | None]]) -> float | None:
    """Mean pairwise Spearman correlation of the judges' per-sample mean scores (None when fewer
    than two judges or no variance to correlate)."""
    values = []
    for a, b in combinations(per_judge.values(), 2):
        pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
        if len(pairs) >= 3 and len({p[0] for p in pairs}) > 1 and len({p[1] for p in pairs}) > 1:
            values.append(float(spearmanr(*zip(*pairs, strict=True)).statistic))
    return round(mean(values), 4) if values else None

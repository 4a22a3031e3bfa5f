"""Judge panel: every judge scores every sample against its cited chunks on a rubric; the panel's
per-criterion means give an aggregate score and a verdict by threshold.

Columns in: SAMPLE_COLUMNS (+ chunks for the cited text). Columns out: + critique (JSON with every
judge's scores, rationale and claims), score (aggregate, NaN when unjudged), verdict
(accept | reject | error). Judge failures are kept per judge and counted.
"""

from __future__ import annotations

import json
from statistics import mean
from typing import Any

import pandas as pd

from assay.config import Critique
from assay.llm import ChatModel, ChatRequest, run_batch
from assay.prompts import judge


def _sources(samples: pd.DataFrame, chunks: pd.DataFrame) -> list[str]:
    text = dict(zip(chunks["chunk_id"], chunks["text"], strict=True))
    return ["\n\n".join(text.get(c, "") for c in ids) for ids in samples["seed_ids"]]


def _judge_all(model: ChatModel, todo: pd.DataFrame, sources: list[str], cfg: Critique) -> list[dict]:
    requests = [ChatRequest(messages=judge.build(src, list(msgs)), temperature=cfg.temperature,
                            max_tokens=cfg.max_tokens, schema=judge.SCHEMA, schema_name="judgement",
                            seed=0, tag="judge")
                for src, msgs in zip(sources, todo["messages"], strict=True)]
    out = []
    for result in run_batch(model, requests, desc=f"critique[{model.name}]"):
        parsed, error = (None, result.error) if result.error else judge.parse(result.data)
        out.append({"judge": model.name, "model": model.model_id, "error": error,
                    **(parsed or {"raw": (result.text or "")[:2000]})})
    return out


def aggregate(judgements: list[dict], threshold: float) -> dict[str, Any]:
    """Per-criterion mean over the judges that answered; aggregate = mean of those; verdict."""
    ok = [j for j in judgements if j.get("error") is None]
    if not ok:
        return {"criteria": {}, "aggregate": None, "verdict": "error"}
    criteria = {c: round(mean(j["scores"][c] for j in ok), 4) for c in judge.CRITERIA}
    score = round(mean(criteria.values()), 4)
    return {"criteria": criteria, "aggregate": score, "verdict": "accept" if score >= threshold else "reject"}


def critique(samples: pd.DataFrame, chunks: pd.DataFrame, judges: list[ChatModel],
             cfg: Critique) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Judge every parsed sample with every judge; rows with a generation error get verdict error."""
    todo = samples[samples["error"].isna()].reset_index(drop=True)
    sources = _sources(todo, chunks)
    panel = [_judge_all(m, todo, sources, cfg) for m in judges]
    by_id: dict[str, dict] = {}
    for i, sample_id in enumerate(todo["id"]):
        judgements = [p[i] for p in panel]
        by_id[sample_id] = {"judges": judgements, "prompt_version": judge.VERSION, "rounds": 1,
                            **aggregate(judgements, cfg.threshold)}
    out = samples.copy()
    blank = {"judges": [], "verdict": "error", "aggregate": None}
    records = [by_id.get(s, blank) for s in out["id"]]
    out["critique"] = [json.dumps(r, sort_keys=True) for r in records]
    out["score"] = [r["aggregate"] if r["aggregate"] is not None else float("nan") for r in records]
    out["verdict"] = [r["verdict"] for r in records]
    return out, _metrics(out, panel, judges)


def _metrics(out: pd.DataFrame, panel: list[list[dict]], judges: list[ChatModel]) -> dict[str, Any]:
    calls = sum(len(p) for p in panel)
    errors = sum(j["error"] is not None for p in panel for j in p)
    verdicts = out["verdict"].value_counts().to_dict()
    metrics: dict[str, Any] = {
        "samples": len(out), "judged": int(out["score"].notna().sum()),
        "judge_calls": calls, "judge_errors": errors, "error_rate": round(errors / max(1, calls), 4),
        "score_mean": round(float(out["score"].mean()), 4) if out["score"].notna().any() else None,
        **{f"verdict.{v}": int(verdicts.get(v, 0)) for v in ("accept", "reject", "error")},
        "accept_rate": round(verdicts.get("accept", 0) / max(1, len(out)), 4),
    }
    for model, results in zip(judges, panel, strict=True):
        for c in judge.CRITERIA:
            values = [j["scores"][c] for j in results if j["error"] is None]
            metrics[f"judge.{model.name}.{c}_mean"] = round(mean(values), 4) if values else None
    return metrics

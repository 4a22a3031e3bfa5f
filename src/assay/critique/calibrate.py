"""Calibration: how well a panel tells good samples from subtly wrong, off-topic and unsafe
ones, on a labelled set (bench/data/calibration.jsonl). Judging only: one round, no revision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from assay.config import Critique
from assay.critique import Models, critique


def load(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _frames(items: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    chunks = pd.DataFrame([{"chunk_id": f"src-{it['id']}", "source": "calibration", "section": it["pair"],
                            "position": i, "text": it["source"], "n_tokens": 0, "content_hash": ""}
                           for i, it in enumerate(items)])
    samples = pd.DataFrame([{"id": it["id"], "task": "qa", "seed_ids": [f"src-{it['id']}"], "evidence": [],
                             "evidence_ok": True, "generation": "{}", "error": None, "raw": None,
                             "messages": [{"role": "user", "content": it["question"]},
                                          {"role": "assistant", "content": it["answer"]}]} for it in items])
    return samples, chunks


def evaluate(items: list[dict[str, Any]], models: Models, cfg: Critique) -> dict[str, Any]:
    """Pair accuracy (the good sample of a pair scores strictly higher than its bad one) and
    verdict accuracy (good accepted, everything else not), with per-item results."""
    samples, chunks = _frames(items)
    out, _, _ = critique(samples, chunks, models, cfg.model_copy(update={"max_rounds": 1}))
    score = dict(zip(out["id"], out["score"], strict=True))
    verdict = dict(zip(out["id"], out["verdict"], strict=True))
    judged = {r.id: (json.loads(r.critique).get("rounds") or [{}])[0].get("judge_mean") for r in out.itertuples()}
    return _score(items, score, verdict) | {"judge_mean": judged}


def judges_only(result: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """The same figures when the judges' mean P(Yes) alone ranks, and accepts at 0.5."""
    judged = {k: (-1.0 if v is None else v) for k, v in result["judge_mean"].items()}
    return _score(items, judged, {k: "accept" if v >= 0.5 else "reject" for k, v in judged.items()})


def _score(items: list[dict[str, Any]], score: dict[str, float], verdict: dict[str, str]) -> dict[str, Any]:
    pairs: dict[str, dict[str, list[str]]] = {}
    for it in items:
        pairs.setdefault(it["pair"], {}).setdefault("good" if it["label"] == "good" else "bad", []).append(it["id"])
    ranked = [score[g] > score[b] for p in pairs.values() for g in p.get("good", []) for b in p.get("bad", [])]
    right = [(verdict[it["id"]] == "accept") == (it["label"] == "good") for it in items]
    return {"pair_accuracy": round(sum(ranked) / len(ranked), 4), "pairs": len(ranked),
            "verdict_accuracy": round(sum(right) / len(right), 4), "items": len(right),
            "per_item": {it["id"]: {"label": it["label"], "score": score[it["id"]], "verdict": verdict[it["id"]]}
                         for it in items}}

"""Critique metrics: score distributions per judge and criterion, agreement, decisions per round,
and what revision bought (share of revised samples whose aggregate rose)."""

from __future__ import annotations

from collections import Counter
from statistics import mean
from typing import Any

from assay.critique.loop import State
from assay.critique.panel import agreement
from assay.prompts.judge import CRITERIA


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _judges(states: list[State]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    first = [s.rounds[0] for s in states if s.rounds]
    names = sorted({j["judge"] for r in first for j in r["judges"]})
    calls = [j for s in states for r in s.rounds for j in r["judges"]]
    out["judge_calls"], out["judge_errors"] = len(calls), sum(j["error"] is not None for j in calls)
    out["error_rate"] = _r(out["judge_errors"] / len(calls)) if calls else 0.0
    per_judge: dict[str, list[float | None]] = {}
    for name in names:
        mine = [next(j for j in r["judges"] if j["judge"] == name) for r in first]
        ok = [j for j in mine if j["error"] is None]
        per_judge[name] = [mean(j["scores"].values()) if j["error"] is None else None for j in mine]
        for c in CRITERIA:
            values = [j["scores"][c] for j in ok]
            out[f"judge.{name}.{c}_mean"] = _r(mean(values)) if values else None
            out |= {f"judge.{name}.{c}_dist.{k}": v for k, v in sorted(Counter(values).items())}
    out["agreement_spearman"] = agreement(per_judge)
    return out


def _rounds(states: list[State], max_rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index in range(max_rounds):
        decided = [s.rounds[index].get("decision", {}).get("decision") for s in states if len(s.rounds) > index]
        counts = Counter(d for d in decided if d)
        out |= {f"round{index + 1}.{d}": counts.get(d, 0) for d in ("accept", "revise", "reject")}
    revised = [s for s in states if len(s.rounds) > 1 and s.rounds[0]["aggregate"] is not None
               and s.rounds[-1]["aggregate"] is not None]
    rose = [s for s in revised if s.rounds[-1]["aggregate"] > s.rounds[0]["aggregate"]]
    out["revised"] = len(revised)
    out["revised_score_rose"] = len(rose)
    out["revised_score_rose_share"] = _r(len(rose) / len(revised)) if revised else None
    out["revision_gain_mean"] = _r(mean(s.rounds[-1]["aggregate"] - s.rounds[0]["aggregate"]
                                        for s in revised)) if revised else None
    return out


def _signals(states: list[State]) -> dict[str, Any]:
    first = [s.rounds[0] for s in states if s.rounds]
    checks = [r["verifier"] for r in first if r.get("verifier")]
    out: dict[str, Any] = {
        "verifier.score_mean": _r(mean(c["score"] for c in checks)) if checks else None,
        "verifier.fully_grounded_share": _r(sum(not c["unsupported"] for c in checks) / len(checks)) if checks else None,
    }
    rewards = [r["reward"] for r in first if r.get("reward") and "error" not in r["reward"]]
    for dim in sorted({d for r in rewards for d in r}):
        out[f"reward.{dim}_mean"] = _r(mean(r[dim] for r in rewards if dim in r))
    out["reward.errors"] = sum(1 for r in first if "error" in (r.get("reward") or {}))
    return out


def critique_metrics(states: list[State], total: int, max_rounds: int) -> dict[str, Any]:
    verdicts = Counter(s.verdict for s in states)
    scores = [s.score for s in states if s.score is not None]
    return {
        "samples": total, "judged": len(scores), "score_mean": _r(mean(scores)) if scores else None,
        **{f"verdict.{v}": verdicts.get(v, 0) + (total - len(states) if v == "error" else 0)
           for v in ("accept", "reject", "error")},
        "accept_rate": _r(verdicts.get("accept", 0) / total) if total else 0.0,
        **_judges(states), **_rounds(states, max_rounds), **_signals(states),
    }

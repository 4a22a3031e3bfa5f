"""Critique metrics that do not flatter: per-signal distributions, what each signal vetoed, the
estimated precision of accepted samples, judge spread and agreement, decisions per round, and what
revision bought."""

from __future__ import annotations

from collections import Counter
from statistics import mean, pstdev
from typing import Any

from assay.config import Critique
from assay.critique import grounding
from assay.critique.loop import State
from assay.critique.panel import agreement

NON_DISCRIMINATING_STD = 0.05  # a judge whose P(Yes) spreads less than this tells samples apart no better than a constant


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _judges(states: list[State]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    first = [s.rounds[0] for s in states if s.rounds]
    names = sorted({j["judge"] for r in first for j in r["judges"]})
    verdicts = [j for s in states for r in s.rounds for j in r["judges"]]
    calls = [j for j in verdicts if not j.get("skipped")]  # a skipped verdict made no call
    out["judge_calls"], out["judge_errors"] = len(calls), sum(j["error"] is not None for j in calls)
    out["judge_skipped"] = len(verdicts) - len(calls)
    out["error_rate"] = _r(out["judge_errors"] / len(calls)) if calls else 0.0
    per_judge: dict[str, list[float | None]] = {}
    for name in names:
        mine = [next(j for j in r["judges"] if j["judge"] == name) for r in first]
        per_judge[name] = [j["p_yes"] if j["error"] is None else None for j in mine]
        values = [v for v in per_judge[name] if v is not None]
        out[f"judge.{name}.p_yes_mean"] = _r(mean(values)) if values else None
        out[f"judge.{name}.p_yes_std"] = _r(pstdev(values)) if len(values) > 1 else None
        out[f"judge.{name}.yes_share"] = _r(sum(v >= 0.5 for v in values) / len(values)) if values else None
    out["agreement_spearman"] = agreement(per_judge)
    return out


def non_discriminating(metrics: dict[str, Any]) -> list[str]:
    """Judges whose verdicts barely vary over the run: a warning, not an error."""
    return [k.split(".")[1] for k, v in metrics.items()
            if k.startswith("judge.") and k.endswith(".p_yes_std") and v is not None and v < NON_DISCRIMINATING_STD]


def _rounds(states: list[State], max_rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index in range(max_rounds):
        decided = [s.rounds[index].get("decision", {}).get("decision") for s in states if len(s.rounds) > index]
        counts = Counter(d for d in decided if d)
        out |= {f"round{index + 1}.{d}": counts.get(d, 0) for d in ("accept", "revise", "reject")}
    revised = [s for s in states if len(s.rounds) > 1]
    rose = [s for s in revised if s.rounds[-1]["p_grounded"] > s.rounds[0]["p_grounded"]]
    out["revised"] = len(revised)
    out["revised_score_rose"] = len(rose)
    out["revised_score_rose_share"] = _r(len(rose) / len(revised)) if revised else None
    out["revision_gain_mean"] = _r(mean(s.rounds[-1]["p_grounded"] - s.rounds[0]["p_grounded"]
                                        for s in revised)) if revised else None
    return out


def _signals(states: list[State]) -> dict[str, Any]:
    first = [s.rounds[0] for s in states if s.rounds]
    out: dict[str, Any] = {}
    for name in grounding.FEATURES:
        values = [r["signals"][name] for r in first if name in r.get("signals", {})]
        out[f"signal.{name}_mean"] = _r(mean(values)) if values else None
    vetoed = Counter(v for r in first for v in r.get("vetoes", []))
    for name in ("grounding", "evidence", "safety"):
        out[f"veto.{name}_share"] = _r(vetoed.get(name, 0) / len(first)) if first else None
    p = [r["p_grounded"] for r in first]
    out["p_grounded_mean"], out["p_grounded_std"] = (_r(mean(p)), _r(pstdev(p))) if p else (None, None)
    rewards = [r["reward"] for r in first if r.get("reward") and "error" not in r["reward"]]
    for dim in sorted({d for r in rewards for d in r}):
        out[f"reward.{dim}_mean"] = _r(mean(r[dim] for r in rewards if dim in r))
    out["reward.errors"] = sum(1 for r in first if "error" in (r.get("reward") or {}))
    return out


def _precision(states: list[State], model_path: str | None) -> dict[str, Any]:
    """Estimated precision of accepted samples: the mean P(grounded) of what was accepted (the
    decision is calibrated on dev data), beside the precision the fitted model reached there."""
    accepted = [s.rounds[-1]["p_grounded"] for s in states if s.verdict == "accept"]
    fitted = grounding.load(model_path).spec.get("dev", {})
    return {"estimated_precision_accepted": _r(mean(accepted)) if accepted else None,
            "dev_precision_accepted": fitted.get("precision_accepted"),
            "dev_balanced_accuracy": fitted.get("balanced_accuracy")}


def critique_metrics(states: list[State], total: int, cfg: Critique) -> dict[str, Any]:
    verdicts = Counter(s.verdict for s in states)
    scores = [s.score for s in states if s.score is not None]
    return {
        "samples": total, "judged": len(scores), "score_mean": _r(mean(scores)) if scores else None,
        **{f"verdict.{v}": verdicts.get(v, 0) + (total - len(states) if v == "error" else 0)
           for v in ("accept", "reject", "error")},
        "accept_rate": _r(verdicts.get("accept", 0) / total) if total else 0.0,
        **_judges(states), **_rounds(states, cfg.max_rounds), **_signals(states),
        **_precision(states, cfg.grounding_model),
    }

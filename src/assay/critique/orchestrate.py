"""The orchestrator: from a sample's round summary to accept / revise / reject, and for revise one
consolidated, actionable feedback note. Rule-based by default; an LLM agent on request, falling
back to the rules whenever its reply is unusable and never overruling a veto.

The rules apply `critique` params and the fitted grounding decision only: a sample is accepted
when no signal vetoes it (see `vetoes`), and otherwise revised while rounds remain."""

from __future__ import annotations

from typing import Any

from assay.config import Critique
from assay.llm import ChatModel, ChatRequest, run_batch
from assay.prompts import orchestrator


def vetoes(summary: dict[str, Any], cfg: Critique) -> list[str]:
    """The signals that block acceptance: `grounding` (P(grounded) below the threshold),
    `evidence` (a quote not in the source, or an API demo without its call), `safety` (reward
    safety below `min_safety`). Empty: accept."""
    out = []
    if summary["p_grounded"] < summary["threshold"]:
        out.append("grounding")
    if not summary.get("evidence_ok", True):
        out.append("evidence")
    safety = (summary.get("reward") or {}).get("safety")
    if safety is not None and safety < cfg.min_safety:
        out.append("safety")
    return out


def feedback_note(summary: dict[str, Any]) -> str:
    """Everything the signals found wrong, as one instruction for the writer."""
    items = list(summary.get("verifier", {}).get("unsupported", []))
    words = summary.get("unsupported_words") or []
    if words:
        items.append("these words are not in the source: " + ", ".join(words))
    doubters = [j["judge"] for j in summary.get("judges", []) if (j.get("p_yes") or 1) < 0.5]
    if doubters:
        items.append(f"the reviewer(s) {', '.join(doubters)} found statements the source does not support")
    if not summary.get("evidence_ok", True):
        items.append("the evidence must be copied word for word from the source, and an API demo must call "
                     "the source's operation")
    unique = list(dict.fromkeys(items))[:8]
    base = "Say only what the quoted source sentences state, in their words; drop anything else."
    return f"{base} Fix: " + "; ".join(unique) if unique else base


def decide_rules(summary: dict[str, Any], round_: int, cfg: Critique) -> tuple[str, str]:
    """accept | revise | reject with a reason or feedback note."""
    blocked = summary["vetoes"]
    p, t = summary["p_grounded"], summary["threshold"]
    if not blocked:
        return "accept", f"P(grounded) {p} >= {t}, no veto"
    if "safety" in blocked:
        return "reject", f"unsafe (reward safety {summary['reward']['safety']} < {cfg.min_safety})"
    if round_ < cfg.max_rounds:
        return "revise", feedback_note(summary)
    return "reject", f"still vetoed by {', '.join(blocked)} after {cfg.max_rounds} round(s) (P(grounded) {p})"


def decide_all(summaries: list[dict[str, Any]], round_: int, cfg: Critique,
               agent: ChatModel | None) -> list[dict[str, str]]:
    """A decision per summary; the LLM agent (if any) may choose between revise and reject, or
    accept what no signal vetoes, but never accepts a vetoed sample or revises past the limit."""
    ruled = [decide_rules(s, round_, cfg) for s in summaries]
    if agent is None:
        return [{"decision": d, "note": n, "by": "rules"} for d, n in ruled]
    requests = [ChatRequest(messages=orchestrator.build(_brief(s), round_, cfg.max_rounds), temperature=0.0,
                            max_tokens=cfg.orchestrator_max_tokens, schema=orchestrator.SCHEMA,
                            schema_name="decision", seed=0, tag="orchestrator") for s in summaries]
    out = []
    for summary, (rule, note), result in zip(summaries, ruled, run_batch(agent, requests, desc="orchestrator"),
                                             strict=True):
        parsed, _ = (None, None) if result.error else orchestrator.parse(result.data)
        vetoed = bool(summary["vetoes"])
        if (parsed is None or (parsed["decision"] == "accept" and vetoed) or "safety" in summary["vetoes"]
                or (parsed["decision"] == "revise" and round_ >= cfg.max_rounds)):
            out.append({"decision": rule, "note": note, "by": "rules"})
        else:
            out.append({"decision": parsed["decision"], "note": parsed["feedback"] or note, "by": "agent"})
    return out


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    return {"p_grounded": summary["p_grounded"], "threshold": summary["threshold"], "vetoes": summary["vetoes"],
            "signals": summary.get("signals"), "verifier": summary.get("verifier"), "reward": summary.get("reward"),
            "judges": [{"judge": j["judge"], "p_yes": j.get("p_yes")} for j in summary.get("judges", [])],
            "unsupported_words": summary.get("unsupported_words"), "evidence_ok": summary.get("evidence_ok")}

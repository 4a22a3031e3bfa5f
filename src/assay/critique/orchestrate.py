"""The orchestrator: from a sample's panel summary to accept / revise / reject, and for revise
one consolidated, actionable feedback note. Rule-based by default; an LLM agent on request,
falling back to the rules whenever its reply is unusable."""

from __future__ import annotations

from typing import Any

from assay.config import Critique
from assay.llm import ChatModel, ChatRequest, run_batch
from assay.prompts import orchestrator


def feedback_note(summary: dict[str, Any]) -> str:
    """Everything the panel found wrong, as one instruction for the writer."""
    items = list(summary["verifier"]["unsupported"]) if summary.get("verifier") else []
    for judgement in summary["judges"]:
        items += [f"unsupported claim: {c['claim']}" for c in judgement.get("claims", []) if not c["supported"]]
        low = [c for c, v in judgement.get("scores", {}).items() if v <= 3]
        if low and judgement.get("rationale"):
            items.append(f"{'/'.join(low)} low: {judgement['rationale']}")
    if not summary.get("evidence_ok", True):
        items.append("the evidence quotes must be copied word for word from the source")
    unique = list(dict.fromkeys(items))[:8]
    return "Fix the following, using only the source: " + "; ".join(unique) if unique else \
        "Make the answer more precise and complete, using only facts stated in the source."


def decide_rules(summary: dict[str, Any], round_: int, cfg: Critique) -> tuple[str, str]:
    """accept | revise | reject with a reason or feedback note."""
    score = summary["aggregate"]
    safety = summary.get("reward", {}).get("safety")
    relevance = summary["panel"]["criteria"].get("relevance")
    if safety is not None and safety < cfg.min_safety:
        return "reject", f"unsafe (reward safety {safety} < {cfg.min_safety})"
    if relevance is not None and relevance <= 1.5:
        return "reject", f"off-topic (judges' relevance {relevance})"
    unsupported = bool(summary.get("verifier") and summary["verifier"]["unsupported"])
    if score >= cfg.threshold and not unsupported and summary.get("evidence_ok", True):
        return "accept", f"aggregate {score} >= {cfg.threshold}, every claim grounded"
    if score < cfg.reject_below:
        return "reject", f"aggregate {score} < {cfg.reject_below}"
    if round_ < cfg.max_rounds:
        return "revise", feedback_note(summary)
    return "reject", f"still not acceptable after {cfg.max_rounds} rounds (aggregate {score})"


def decide_all(summaries: list[dict[str, Any]], round_: int, cfg: Critique,
               agent: ChatModel | None) -> list[dict[str, str]]:
    """A decision per summary; the LLM agent (if any) may overrule the rules, never past the
    round limit and never to accept what the rules reject as unsafe."""
    ruled = [decide_rules(s, round_, cfg) for s in summaries]
    if agent is None:
        return [{"decision": d, "note": n, "by": "rules"} for d, n in ruled]
    requests = [ChatRequest(messages=orchestrator.build(_brief(s), round_, cfg.max_rounds), temperature=0.0,
                            max_tokens=250, schema=orchestrator.SCHEMA, schema_name="decision", seed=0,
                            tag="orchestrator") for s in summaries]
    out = []
    for (rule, note), result in zip(ruled, run_batch(agent, requests, desc="orchestrator"), strict=True):
        parsed, _ = (None, None) if result.error else orchestrator.parse(result.data)
        unsafe = rule == "reject" and note.startswith("unsafe")
        if parsed is None or unsafe or (parsed["decision"] == "revise" and round_ >= cfg.max_rounds):
            out.append({"decision": rule, "note": note, "by": "rules"})
        else:
            out.append({"decision": parsed["decision"], "note": parsed["feedback"] or note, "by": "agent"})
    return out


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    return {"aggregate": summary["aggregate"], "criteria": summary["panel"]["criteria"],
            "verifier": summary.get("verifier"), "reward": summary.get("reward"),
            "judge_rationales": [j.get("rationale") for j in summary["judges"] if j.get("rationale")],
            "evidence_ok": summary.get("evidence_ok")}

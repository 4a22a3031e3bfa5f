"""The critique loop: signals (grounding, judges, verifier, reward) -> the calibrated decision ->
orchestrate -> revise -> judge again, up to `critique.max_rounds`. Every round (every signal,
P(grounded), vetoes, decision, feedback, revision) stays in the record.

Columns in: SAMPLE_COLUMNS + chunks. Columns out: messages/evidence/evidence_ok (final version),
critique (JSON: rounds, original_messages when revised), score (final P(grounded), 0-1), verdict
(accept | reject | error), rounds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from assay.config import Critique
from assay.critique import grounding, orchestrate, panel
from assay.critique.reward import RewardScorer
from assay.critique.verify import verify
from assay.llm import ChatModel, ChatRequest, enforces_schema, run_batch
from assay.prompts import evidence_ok, revise, task_demo


@dataclass
class Models:
    judges: list[ChatModel]
    reviser: ChatModel
    reward: RewardScorer
    agent: ChatModel | None = None


@dataclass
class State:
    sample_id: str
    task: str
    source: str
    messages: list[dict]
    evidence: list[str]
    evidence_ok: bool
    original: list[dict]
    rounds: list[dict] = field(default_factory=list)
    verdict: str = "error"
    score: float | None = None
    heading: str = ""

    @property
    def context(self) -> str:
        """What the sample is judged against: the cited chunks under their section heading. The
        generator saw the heading, and a question or answer naming the section's subject ("the room
        sensor is offline" under "Room sensor offline (E08)") states what the document says.
        Evidence quotes are still checked against the chunk text alone (`source`)."""
        return f"{self.heading}\n\n{self.source}" if self.heading else self.source


def _summaries(states: list[State], models: Models, cfg: Critique, round_: int) -> list[dict[str, Any]]:
    """Per state: every signal of this round, P(grounded), the threshold and the vetoes. A judge
    is asked only where its verdict can change the decision (see `_judge_moot`)."""
    conversations, sources = [s.messages for s in states], [s.context for s in states]
    rewards = models.reward.score(conversations, sources)
    decision = grounding.load(cfg.grounding_model)
    bases = [grounding.assess(decision, s.context, s.messages) for s in states]
    moot = [_judge_moot(decision, b["p_signals"], s.evidence_ok, r, cfg) if models.judges else None
            for s, b, r in zip(states, bases, rewards, strict=True)]
    asked = [i for i, m in enumerate(moot) if m is None]
    per_judge = panel.judge_panel(models.judges, [conversations[i] for i in asked], [sources[i] for i in asked],
                                  round_)
    verdicts = {i: [p[k] for p in per_judge] for k, i in enumerate(asked)}
    out = []
    for i, state in enumerate(states):
        judgements = verdicts.get(i) or [panel.skipped(m, moot[i]) for m in models.judges]
        judged = panel.judge_mean(judgements)
        summary = {"round": round_, "judges": judgements, "judge_mean": judged, "reward": rewards[i],
                   "verifier": verify(state.messages, state.context), "evidence_ok": state.evidence_ok,
                   **(grounding.assess(decision, state.context, state.messages, judged) if i in verdicts
                      else _bound(decision, bases[i], moot[i]))}
        if cfg.threshold is not None:
            summary["threshold"] = cfg.threshold
        summary["vetoes"] = orchestrate.vetoes(summary, cfg)
        out.append(summary)
    return out


def _judge_moot(decision: grounding.Model, p_signals: float, evidence_ok: bool, reward: dict | None,
                cfg: Critique) -> str | None:
    """Why no judge verdict can change this sample's decision, or None when one can: a
    deterministic veto (evidence, safety) blocks acceptance whatever the judges say, or P(grounded)
    is on the same side of the threshold for a verdict of No and of Yes."""
    if not evidence_ok:
        return "evidence veto"
    safety = (reward or {}).get("safety")
    if safety is not None and safety < cfg.min_safety:
        return "safety veto"
    if not decision.stack:  # the verdict does not enter P(grounded); it still names doubters in feedback
        return None
    (low, threshold, _), (high, _, _) = decision.combined(p_signals, 0.0), decision.combined(p_signals, 1.0)
    threshold = cfg.threshold if cfg.threshold is not None else threshold
    if high < threshold:
        return "below the threshold whatever the verdict"
    if low >= threshold:
        return "above the threshold whatever the verdict"
    return None


def _bound(decision: grounding.Model, base: dict[str, Any], why: str) -> dict[str, Any]:
    """The grounding fields of a sample no judge was asked about: for a bound, P(grounded) at the
    verdict that would have come closest to changing the decision; for a veto, the signals alone."""
    if why.startswith(("below", "above")):
        p, threshold, by = decision.combined(base["p_signals"], 1.0 if why.startswith("below") else 0.0)
        base = {**base, "p_grounded": round(p, 4), "threshold": threshold, "decided_by": f"{by} bound"}
    return {**base, "decided_by": f"{base['decided_by']} (no judge: {why})"}


def _revise(states: list[State], notes: list[str], reviser: ChatModel, cfg: Critique) -> list[str | None]:
    """Apply revisions in place; per state None on success or the error."""
    pick = enforces_schema(reviser)  # evidence from the source's sentences
    requests = [ChatRequest(messages=revise.build(s.context, s.messages, note), temperature=cfg.revise_temperature,
                            max_tokens=cfg.revise_max_tokens,
                            schema=revise.schema(sum(m["role"] == "assistant" for m in s.messages),
                                                 s.source if pick else None),
                            schema_name="revision", seed=len(s.rounds), tag="revise")
                for s, note in zip(states, notes, strict=True)]
    errors = []
    for state, note, result in zip(states, notes, run_batch(reviser, requests, desc="revise"), strict=True):
        applied, error = (None, result.error) if result.error else revise.apply(state.messages, result.data)
        error = error or (revise.degenerate(state.task, applied, note) if applied else None)
        applied = None if error else applied
        if applied:
            state.messages, state.evidence = applied["messages"], applied["evidence"]
            state.evidence_ok = grounded(state)
        errors.append(error)
    return errors


def grounded(state: State) -> bool:
    """The generate stage's grounding check on a revised sample: every quote occurs in the source,
    and a revised API demonstration still calls the source's operation."""
    calls = [{"call": m["content"]} for m in state.messages if m["role"] == "assistant"]
    return evidence_ok(state.evidence, state.source) and (state.task != "task_demo"
                                                          or task_demo.calls_ok(calls, state.source))


def run_rounds(states: list[State], models: Models, cfg: Critique) -> None:
    """Judge, decide and revise until every state has a final verdict or rounds run out."""
    active = [s for s in states]
    for round_ in range(1, cfg.max_rounds + 1):
        if not active:
            return
        summaries = _summaries(active, models, cfg, round_)
        scored = list(zip(active, summaries, strict=True))
        for state, summary in scored:
            state.rounds.append(summary)
            state.score = summary["p_grounded"]
        decisions = orchestrate.decide_all(summaries, round_, cfg, models.agent)
        to_revise: list[tuple[State, str]] = []
        for (state, summary), decision in zip(scored, decisions, strict=True):
            summary["decision"] = decision
            if decision["decision"] == "revise":
                to_revise.append((state, decision["note"]))
            else:
                state.verdict = decision["decision"]
        if not to_revise:
            return
        errors = _revise([s for s, _ in to_revise], [n for _, n in to_revise], models.reviser, cfg)
        for (state, _), error in zip(to_revise, errors, strict=True):
            state.rounds[-1]["revision_error"] = error
            state.verdict = "reject" if error else state.verdict
        active = [s for (s, _), e in zip(to_revise, errors, strict=True) if e is None]


def initial_states(samples: pd.DataFrame, chunks: pd.DataFrame) -> list[State]:
    text = dict(zip(chunks["chunk_id"], chunks["text"], strict=True))
    section = dict(zip(chunks["chunk_id"], chunks["section"], strict=True)) if "section" in chunks else {}
    todo = samples[samples["error"].isna()]
    return [State(r.id, r.task, "\n\n".join(text.get(c, "") for c in r.seed_ids), list(r.messages), list(r.evidence),
                  bool(r.evidence_ok), list(r.messages), heading=_heading([section.get(c) for c in r.seed_ids]))
            for r in todo.itertuples()]


def _heading(sections: list) -> str:
    """The cited chunks' distinct section headings ("Manual > Troubleshooting > E08"), one per line."""
    seen = dict.fromkeys(str(s).strip() for s in sections if isinstance(s, str) and s.strip())
    return "\n".join(seen)


def to_frame(samples: pd.DataFrame, states: list[State]) -> pd.DataFrame:
    """Samples with their final version and the critique columns."""
    by_id = {s.sample_id: s for s in states}
    out = samples.copy()
    for col, get in (("messages", lambda s: s.messages), ("evidence", lambda s: s.evidence),
                     ("evidence_ok", lambda s: s.evidence_ok)):
        out[col] = [get(by_id[i]) if i in by_id else v for i, v in zip(out["id"], out[col], strict=True)]
    records = [by_id.get(i) for i in out["id"]]
    out["critique"] = [json.dumps({"rounds": s.rounds, "original_messages": s.original if s.messages != s.original
                                   else None}, sort_keys=True, default=str) if s else "{}" for s in records]
    out["score"] = [s.score if s and s.score is not None else float("nan") for s in records]
    out["verdict"] = [s.verdict if s else "error" for s in records]
    out["rounds"] = [len(s.rounds) if s else 0 for s in records]
    return out

"""The judge panel: every judge gives every sample a grounding verdict, read as P(Yes) from the
verdict token's log-probabilities; agreement between judges."""

from __future__ import annotations

from itertools import combinations
from statistics import mean
from typing import Any

from scipy.stats import spearmanr

from assay.llm import ChatModel, ChatRequest, ChatResult, run_batches
from assay.prompts import judge

VERDICT_ALTERNATIVES = 10  # top log-probabilities asked for: Yes and No are nearly always among them


def _requests(conversations: list[list[dict]], sources: list[str]) -> list[ChatRequest]:
    return [ChatRequest(messages=judge.build(src, msgs), temperature=0.0, max_tokens=1, seed=0,
                        logprobs=VERDICT_ALTERNATIVES, short_ok=True, tag="judge")
            for src, msgs in zip(sources, conversations, strict=True)]


def _read(model: ChatModel, result: ChatResult) -> dict[str, Any]:
    p, error = (None, result.error) if result.error else judge.p_yes(result.top_logprobs, result.text)
    return {"judge": model.name, "model": model.model_id, "p_yes": p, "error": error}


def judge_all(model: ChatModel, conversations: list[list[dict]], sources: list[str],
              round_: int) -> list[dict[str, Any]]:
    """One verdict per sample from one judge: {judge, model, p_yes, error}; failures are kept with
    `error` (never raised)."""
    return judge_panel([model], conversations, sources, round_)[0]


def judge_panel(models: list[ChatModel], conversations: list[list[dict]], sources: list[str],
                round_: int) -> list[list[dict[str, Any]]]:
    """Per judge, one verdict per sample (as `judge_all`); the judges run concurrently (each on
    its own endpoint, so a panel costs the slowest judge's time, not the sum)."""
    if not models or not conversations:
        return [[] for _ in models]
    requests = _requests(conversations, sources)
    batches = run_batches([(m, requests, f"critique r{round_} [{m.name}]") for m in models])
    return [[_read(m, r) for r in results] for m, results in zip(models, batches, strict=True)]


def skipped(model: ChatModel, why: str) -> dict[str, Any]:
    """The record of a verdict not asked for: no call was made, so neither P(Yes) nor an error."""
    return {"judge": model.name, "model": model.model_id, "p_yes": None, "error": None, "skipped": why}


def judge_mean(judgements: list[dict[str, Any]]) -> float | None:
    """Mean P(Yes) over the judges that answered (None: no judge, or every one failed)."""
    values = [j["p_yes"] for j in judgements if j.get("error") is None and j.get("p_yes") is not None]
    return round(mean(values), 4) if values else None


def agreement(per_judge: dict[str, list[float | None]]) -> float | None:
    """Mean pairwise Spearman correlation of the judges' per-sample P(Yes) (None when fewer than
    two judges or no variance to correlate)."""
    values = []
    for a, b in combinations(per_judge.values(), 2):
        pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
        if len(pairs) >= 3 and len({p[0] for p in pairs}) > 1 and len({p[1] for p in pairs}) > 1:
            values.append(float(spearmanr(*zip(*pairs, strict=True)).statistic))
    return round(mean(values), 4) if values else None

"""Reward scores per behavioural dimension (helpfulness, accuracy, safety, formatting) from a
pluggable scorer: an LLM rubric (default) or an HTTP scoring endpoint."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from assay.config import Reward
from assay.llm import ChatModel, ChatRequest, run_batch
from assay.prompts import reward


class RewardScorer(Protocol):
    name: str

    def score(self, conversations: list[list[dict]], sources: list[str]) -> list[dict[str, Any]]:
        """Per sample: {dimension: score 1-5} or {"error": reason}."""
        ...


class LLMReward:
    def __init__(self, model: ChatModel, max_tokens: int):
        self.model, self.max_tokens, self.name = model, max_tokens, f"llm:{model.name}"

    def score(self, conversations: list[list[dict]], sources: list[str]) -> list[dict[str, Any]]:
        requests = [ChatRequest(messages=reward.build(src, msgs), temperature=0.0, max_tokens=self.max_tokens,
                                schema=reward.SCHEMA, schema_name="reward", seed=0, tag="reward")
                    for src, msgs in zip(sources, conversations, strict=True)]
        out = []
        for result in run_batch(self.model, requests, desc=f"reward [{self.model.name}]"):
            parsed, error = (None, result.error) if result.error else reward.parse(result.data)
            out.append(parsed if parsed else {"error": error})
        return out


class EndpointReward:
    """POST {"messages": [...], "source": "..."} to `url`; expects {"scores": {dimension: 1-5}}
    or {"score": x} (recorded as `overall`). Errors are per row."""

    def __init__(self, url: str, timeout: float = 60.0):
        self.url, self.timeout, self.name = url, timeout, f"endpoint:{url}"

    def _one(self, client: httpx.Client, messages: list[dict], source: str) -> dict[str, Any]:
        try:
            reply = client.post(self.url, json={"messages": messages, "source": source})
            reply.raise_for_status()
            body = reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            return {"error": f"{type(exc).__name__}: {exc}"[:300]}
        if isinstance(body.get("scores"), dict):
            return {k: float(v) for k, v in body["scores"].items()}
        if "score" in body:
            return {"overall": float(body["score"])}
        return {"error": "reply has neither 'scores' nor 'score'"}

    def score(self, conversations: list[list[dict]], sources: list[str]) -> list[dict[str, Any]]:
        with httpx.Client(timeout=self.timeout) as client:
            return [self._one(client, m, s) for m, s in zip(conversations, sources, strict=True)]


class NoReward:
    name = "none"

    def score(self, conversations: list[list[dict]], sources: list[str]) -> list[dict[str, Any]]:
        return [{} for _ in conversations]


def make_reward(cfg: Reward, models: dict[str, ChatModel], endpoint: str | None) -> RewardScorer:
    """The scorer `cfg.kind` names; an LLM scorer calls `endpoint` (assay.roles resolves it)."""
    if cfg.kind == "endpoint":
        return EndpointReward(str(cfg.url))
    if cfg.kind == "llm" and endpoint:
        return LLMReward(models[endpoint], cfg.max_tokens)
    return NoReward()

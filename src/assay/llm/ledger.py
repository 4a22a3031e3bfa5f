"""The token, call and cost ledger of a run, flattened into stage metrics."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assay.llm.client import ChatResult


@dataclass
class Ledger:
    """Token, call and cost counters per (endpoint, tag); flattened into stage metrics.
    `prompt_tokens` / `completion_tokens` are what this run asked the endpoint for (like
    `cost_usd`); a cache hit's tokens go to `cached_*` instead, so a fully cached rerun reports 0."""

    rows: dict[tuple[str, str], dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    error_kinds: Counter[tuple[str, str]] = field(default_factory=Counter)  # (endpoint, kind) -> calls
    throttled: dict[str, int] = field(default_factory=dict)  # endpoint -> lowest in-flight limit (AIMD)
    responses: dict[str, int] = field(default_factory=dict)  # responses file: seeded / recorded lines
    batch: Counter[tuple[str, str]] = field(default_factory=Counter)  # (endpoint, event) -> count (Batch API)
    rate_wait_s: dict[str, float] = field(default_factory=dict)  # endpoint -> seconds held back by rpm/tpm
    server_cpu: dict[str, float] = field(default_factory=dict)  # endpoint -> CPU-seconds its local server spent

    def add(self, endpoint: str, tag: str, result: ChatResult, cost: float, seconds: float) -> None:
        row = self.rows[(endpoint, tag)]
        row["calls"] += 1
        row["cache_hits"] += result.cached
        row["errors"] += result.error is not None
        if result.error is not None:
            self.error_kinds[(endpoint, error_kind(result.error))] += 1
        fresh = 0 if result.cached else 1
        row["prompt_tokens"] += fresh * result.prompt_tokens
        row["completion_tokens"] += fresh * result.completion_tokens
        row["cached_prompt_tokens"] += (1 - fresh) * result.prompt_tokens
        if result.prompt_evaluated is not None:
            row["prompt_evaluated"] += fresh * result.prompt_evaluated
        row["cached_completion_tokens"] += (1 - fresh) * result.completion_tokens
        row["cost_usd"] += cost
        row["seconds"] += seconds

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for row in self.rows.values():
            for key, value in row.items():
                out[key] += value
        return dict(out)

    def flat(self, prefix: str = "llm") -> dict[str, float]:
        out = {f"{prefix}.{k}": round(v, 6) for k, v in self.totals().items()}
        for (endpoint, tag), row in sorted(self.rows.items()):
            for key in ("calls", "cache_hits", "errors", "completion_tokens", "cost_usd"):
                out[f"{prefix}.{endpoint}.{tag}.{key}"] = round(row[key], 6)
        for (endpoint, kind), count in sorted(self.error_kinds.items()):
            out[f"{prefix}.{endpoint}.error.{kind}"] = float(count)
        for endpoint, limit in sorted(self.throttled.items()):
            out[f"{prefix}.{endpoint}.concurrency_min"] = float(limit)
        for (endpoint, event), count in sorted(self.batch.items()):
            out[f"{prefix}.{endpoint}.batch.{event}"] = float(count)
        for endpoint, seconds in sorted(self.rate_wait_s.items()):
            out[f"{prefix}.{endpoint}.rate_wait_s"] = round(seconds, 3)
        totals = self.totals()
        out[f"{prefix}.model_calls"] = totals.get("calls", 0.0) - totals.get("cache_hits", 0.0)
        out |= {f"{prefix}.responses_{k}": float(v) for k, v in sorted(self.responses.items())}
        out |= {f"{prefix}.{e}.server_cpu_s": round(v, 2) for e, v in sorted(self.server_cpu.items())}
        if self.server_cpu:
            out[f"{prefix}.server_cpu_s"] = round(sum(self.server_cpu.values()), 2)
        return out


def error_kind(error: str) -> str:
    """A short, metric-safe class of an error message: 'RateLimitError', 'HTTP_401',
    'unparsable_output', 'cut_by_the_token_limit', 'empty_choices'..."""
    head = re.split(r"[:(]", error, maxsplit=1)[0].strip() or "unknown"
    return re.sub(r"[^A-Za-z0-9]+", "_", head)[:40]

"""Requests-per-minute and tokens-per-minute limits for one endpoint: two token buckets, filled
from params (`rpm`, `tpm`) and corrected by the provider's rate-limit headers.

A caller reserves before it sends: `reserve(tokens)` takes one request and `tokens` from the
buckets at once (they may go negative) and returns how long to wait until both would have been
covered. Reservations queue up in arrival order, so a burst spreads out at the configured rate
instead of hitting the provider all at once. `update_from_headers` believes the provider: its
`x-ratelimit-limit-*` set an unknown rate, its `x-ratelimit-remaining-*` lower what we think is
left, and when nothing is left every caller waits for `x-ratelimit-reset-*`. A 429's Retry-After
goes to `pause`.

The interface is small on purpose (`reserve`, `acquire`, `update_from_headers`, `pause`), so
that one instance can be shared by several clients, e.g. inside an actor on a cluster. The clock
is injectable, so waits can be checked without sleeping."""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections.abc import Callable, Mapping

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)?")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_reset(value: str | None) -> float | None:
    """Seconds in a reset header: '1s', '6m0s', '20ms', '1h2m3.5s' or a bare number; None when
    absent or unreadable."""
    if not value:
        return None
    text = value.strip().lower()
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).strip():
        return None
    return sum(float(n) * _UNIT_S[u or None] for n, u in parts)


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


class _Bucket:
    """One per-minute budget. Rate unknown (0): only what the provider reports limits it."""

    def __init__(self, per_minute: int):
        self.configured = per_minute
        self.set_rate(per_minute)
        self.level = self.capacity
        self.stamp: float | None = None
        self.resume_at = 0.0  # nothing goes before this (provider said: empty until reset)

    def set_rate(self, per_minute: int) -> None:
        self.capacity = float(per_minute) if per_minute else math.inf
        self.rate = per_minute / 60.0 if per_minute else math.inf

    def refill(self, now: float) -> None:
        if self.stamp is not None:
            if math.isinf(self.rate):
                if now >= self.resume_at:
                    self.level = math.inf  # the reported window is over and we know no rate
            else:
                self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, amount: float, now: float) -> float:
        """Reserve `amount` now; seconds until it is covered."""
        self.refill(now)
        self.level -= min(amount, self.capacity)  # a request larger than a minute's budget waits a minute
        wait = 0.0 if self.level >= 0 else -self.level / self.rate
        return max(wait, self.resume_at - now)

    def observe(self, remaining: int | None, reset_s: float | None, now: float) -> None:
        self.refill(now)
        if remaining is None:
            return
        self.level = min(self.level, float(remaining))
        if remaining <= 0 and reset_s is not None:
            self.resume_at = max(self.resume_at, now + reset_s)


class RateLimiter:
    """RPM + TPM budget of one endpoint; thread-safe; `clock` returns seconds (monotonic)."""

    def __init__(self, rpm: int = 0, tpm: int = 0, name: str = "endpoint",
                 clock: Callable[[], float] = time.monotonic):
        self.name, self.clock = name, clock
        self.requests, self.tokens = _Bucket(rpm), _Bucket(tpm)
        self.waited_s = 0.0  # total wait handed out: reported in metrics
        self.waits = 0  # reservations that had to wait
        self._lock = threading.Lock()

    def reserve(self, tokens: int = 0) -> float:
        """Take one request and `tokens` from the budget; seconds the caller must wait before sending."""
        with self._lock:
            now = self.clock()
            wait = max(self.requests.take(1, now), self.tokens.take(max(0, tokens), now), 0.0)
            if wait > 0:
                self.waits += 1
                self.waited_s += wait
            return wait

    async def acquire(self, tokens: int = 0) -> float:
        """Reserve, then sleep the wait (returned)."""
        wait = self.reserve(tokens)
        if wait > 0:
            await asyncio.sleep(wait)
        return wait

    def update_from_headers(self, headers: Mapping[str, str]) -> None:
        """Apply a response's `x-ratelimit-*` headers (any case; missing ones change nothing).
        A provider limit applies where params set none, or where it is lower."""
        h = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            now = self.clock()
            for kind, bucket in (("requests", self.requests), ("tokens", self.tokens)):
                limit = _int(h.get(f"x-ratelimit-limit-{kind}"))
                if limit and (not bucket.configured or limit < bucket.configured):
                    bucket.refill(now)
                    bucket.set_rate(limit)
                    bucket.level = min(bucket.level, bucket.capacity)
                bucket.observe(_int(h.get(f"x-ratelimit-remaining-{kind}")),
                               parse_reset(h.get(f"x-ratelimit-reset-{kind}")), now)

    def pause(self, seconds: float) -> None:
        """The provider refused for rate (429 with Retry-After): nobody sends for `seconds`."""
        with self._lock:
            until = self.clock() + max(0.0, seconds)
            for bucket in (self.requests, self.tokens):
                bucket.resume_at = max(bucket.resume_at, until)


def estimate_tokens(messages: list[dict[str, str]], max_tokens: int) -> int:
    """What a provider counts against TPM before answering: ~4 characters per prompt token plus
    the completion budget (OpenAI reserves max_tokens)."""
    chars = sum(len(str(m.get("content") or "")) + 8 for m in messages)
    return chars // 4 + max_tokens

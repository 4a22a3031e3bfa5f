"""RateLimiter (requests/tokens per minute, provider headers) with an injected clock, and the live
client slowing down on rate-limit headers and 429s from the loopback OpenAI stub."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from assay.llm import Ledger, run_batch
from assay.llm import client as client_mod
from assay.llm.cache import ResponseCache
from assay.llm.client import OpenAIChat
from assay.llm.ratelimit import RateLimiter, estimate_tokens, parse_reset
from tests.batch_worker import requests
from tests.openai_stub import OpenAIStub, completion, error


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5),
                                               ("0.5", 0.5), ("", None), (None, None), ("soon", None)])
def test_reset_durations(text, seconds):
    assert parse_reset(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_requests_per_minute_burst_then_spaced_in_arrival_order():
    clock = Clock()
    limiter = RateLimiter(rpm=6, clock=clock)  # a full bucket of 6, then one every 10 s
    waits = [limiter.reserve() for _ in range(9)]
    assert waits == pytest.approx([0, 0, 0, 0, 0, 0, 10, 20, 30])
    clock.now += 90  # 30 s pay the 3 reserved ahead, the next minute refills 6, never more
    assert [limiter.reserve() for _ in range(7)] == pytest.approx([0, 0, 0, 0, 0, 0, 10])
    assert limiter.waits == 4


def test_tokens_per_minute_hold_back_large_requests():
    clock = Clock()
    limiter = RateLimiter(tpm=1200, clock=clock)  # 20 tokens per second
    assert limiter.reserve(1000) == 0
    assert limiter.reserve(400) == pytest.approx(10.0)  # 200 short: 10 s at 20 tokens/s
    assert limiter.reserve(5000) == pytest.approx(70.0)  # capped at a minute's budget, queued behind
    assert RateLimiter(clock=clock).reserve(10**9) == 0  # no limits: never waits


def test_provider_headers_set_the_rate_and_an_empty_budget_waits_for_the_reset():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.update_from_headers({"X-RateLimit-Limit-Requests": "60", "x-ratelimit-remaining-requests": "0",
                                 "x-ratelimit-reset-requests": "2.5s", "x-ratelimit-limit-tokens": "600000",
                                 "x-ratelimit-remaining-tokens": "599000", "x-ratelimit-reset-tokens": "100ms"})
    assert limiter.reserve(100) == pytest.approx(2.5)  # no request left until the reset
    assert limiter.reserve(100) == pytest.approx(2.5)  # 60/min: one a second, but the reset is later
    clock.now += 2.5
    assert limiter.reserve(100) == pytest.approx(0.5)  # the refill since the headers covers 0.5 of it


def test_params_win_when_lower_than_the_provider_and_pause_stops_everyone():
    clock = Clock()
    limiter = RateLimiter(rpm=30, clock=clock)
    limiter.update_from_headers({"x-ratelimit-limit-requests": "10000"})
    assert limiter.requests.rate == pytest.approx(0.5)
    limiter.pause(7.0)
    assert limiter.reserve() == pytest.approx(7.0)
    limiter.update_from_headers({"x-ratelimit-limit-requests": "6"})  # the provider is stricter
    assert limiter.requests.rate == pytest.approx(0.1)


def test_token_estimate_counts_the_completion_budget():
    assert estimate_tokens([{"role": "user", "content": "x" * 400}], 64) == 102 + 64


@pytest.fixture
def chat(tmp_path, monkeypatch):
    monkeypatch.setattr(client_mod, "random", SimpleNamespace(random=lambda: 0.0))
    caches = []

    def make(stub: OpenAIStub, **overrides) -> OpenAIChat:
        caches.append(ResponseCache(tmp_path / "cache"))
        options = {"base_url": stub.base_url, "model": "stub-model", "api_key": "k", "model_id": "stub@1",
                   "cache": caches[-1], "ledger": Ledger(), "concurrency": 4, "timeout_s": 5.0, "max_retries": 3}
        return OpenAIChat("hosted", **(options | overrides))

    yield make
    for cache in caches:
        cache.close()


def _ok(headers: dict[str, str]):
    return lambda body: (200, headers, completion(json.dumps({"answer": body["messages"][-1]["content"]})))


def test_the_client_waits_when_the_provider_reports_no_requests_left(chat):
    empty = {"x-ratelimit-limit-requests": "6000", "x-ratelimit-remaining-requests": "0",
             "x-ratelimit-reset-requests": "200ms"}
    with OpenAIStub([_ok(empty), _ok({})]) as stub:
        model = chat(stub)
        model.rate = RateLimiter(name="hosted", clock=Clock())  # frozen: waits are computed, not timed
        first = run_batch(model, requests(1))
        results = run_batch(model, requests(5)[1:])  # the first reply said: nothing left for 200 ms
    assert first[0].error is None and all(r.error is None for r in results)
    assert model.rate.waits == 4  # every later request was held back, none sent early
    assert model.ledger.flat()["llm.hosted.rate_wait_s"] == pytest.approx(4 * 0.2)


def test_a_429_with_retry_after_holds_back_every_later_request(chat):
    limited = error(429, "rate limit reached", {"Retry-After": "0.3"})
    with OpenAIStub([limited, _ok({})]) as stub:
        model = chat(stub, concurrency=1)
        model.rate = RateLimiter(name="hosted", clock=Clock())  # frozen: the pause never ends by itself
        results = run_batch(model, requests(3))
        sent = [r.body["messages"][-1]["content"] for r in stub.requests]
    assert [r.data for r in results] == [{"answer": f"question {i}"} for i in range(3)]
    assert sent == ["question 0", "question 0", "question 1", "question 2"]  # the refused one again, first
    assert model.rate.waits == 3 and model.rate.waited_s == pytest.approx(3 * 0.3)  # the retry and both others
    assert model.limiter.decreases == 1  # and the in-flight limit was cut


class Recorder:
    """Any object with acquire / update_from_headers / pause can stand in (e.g. a shared actor)."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    async def acquire(self, tokens: int = 0) -> float:
        self.events.append(("acquire", tokens))
        return 0.0

    def update_from_headers(self, headers) -> None:
        self.events.append(("headers", headers.get("x-ratelimit-remaining-requests")))

    def pause(self, seconds: float) -> None:
        self.events.append(("pause", seconds))


def test_the_client_uses_only_the_small_limiter_interface(chat):
    limited = error(429, "slow down", {"Retry-After": "0.1", "x-ratelimit-remaining-requests": "0"})
    with OpenAIStub([limited, _ok({"x-ratelimit-remaining-requests": "41"})]) as stub:
        model = chat(stub, concurrency=1)
        model.rate = Recorder()
        assert run_batch(model, requests(1))[0].error is None
    tokens = estimate_tokens([{"role": "user", "content": "question 0"}], 64)
    assert model.rate.events == [("acquire", tokens), ("headers", "0"), ("pause", 0.1),
                                 ("acquire", tokens), ("headers", "41")]

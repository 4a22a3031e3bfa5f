"""OpenAIChat, run_batch, the ledger and open_models against a loopback OpenAI-compatible stub.

The real `openai` client talks real HTTP to tests/openai_stub.py: retries, timeouts and error
mapping are exercised end to end, and nothing inside the SDK is patched."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from assay.config import Params
from assay.errors import AssayError
from assay.llm import ChatRequest, Ledger, describe, open_models, run_batch
from assay.llm import client as client_mod
from assay.llm.cache import ResponseCache
from assay.llm.client import OpenAIChat
from tests.openai_stub import DROP, HANG, OpenAIStub, completion, error

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
OK = completion('{"answer": "42"}', prompt_tokens=12, completion_tokens=7)


def request(content: str = "What is six times seven?", **kw) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": content}], **({"schema": SCHEMA, "max_tokens": 64} | kw))


def ask(chat: OpenAIChat, req: ChatRequest):
    return asyncio.run(chat.complete(req))


@pytest.fixture(autouse=True)
def no_jitter(monkeypatch):
    """Backoff without jitter (0.25 s, 0.5 s, 1 s): fast, and timings can be asserted."""
    monkeypatch.setattr(client_mod, "random", SimpleNamespace(random=lambda: 0.0))


@pytest.fixture
def serve():
    """serve(*script, delay=0.0) -> a running OpenAIStub, closed after the test."""
    stubs: list[OpenAIStub] = []

    def start(*script, delay: float = 0.0) -> OpenAIStub:
        stubs.append(OpenAIStub(list(script), delay=delay).start())
        return stubs[-1]

    yield start
    for stub in stubs:
        stub.close()
        assert not stub.server_errors, stub.server_errors


@pytest.fixture
def make_chat(tmp_path):
    """make_chat(stub, **overrides) -> OpenAIChat with its cache in tmp_path and a fresh ledger."""
    caches: list[ResponseCache] = []

    def make(stub: OpenAIStub, **overrides) -> OpenAIChat:
        caches.append(ResponseCache(tmp_path / "cache"))
        options = {"base_url": stub.base_url, "model": "stub-model", "api_key": "test-key",
                   "model_id": "stub-model@1", "cache": caches[-1], "ledger": Ledger(),
                   "concurrency": 4, "timeout_s": 2.0, "max_retries": 3}
        return OpenAIChat("stub", **(options | overrides))

    yield make
    for cache in caches:
        cache.close()


@pytest.mark.parametrize(("json_schema", "response_format"), [
    (True, {"type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA}}),
    (False, {"type": "json_object"}),
])
def test_success_parses_json_and_sends_response_format(serve, make_chat, json_schema, response_format):
    stub = serve(OK)
    result = ask(make_chat(stub, json_schema=json_schema), request())
    assert result.error is None and result.data == {"answer": "42"}
    assert (result.text, result.finish_reason, result.cached) == ('{"answer": "42"}', "stop", False)
    assert (result.prompt_tokens, result.completion_tokens, result.model) == (12, 7, "stub-model@1")
    [sent] = stub.requests
    assert sent.body["response_format"] == response_format
    assert sent.body["model"] == "stub-model" and sent.body["max_tokens"] == 64
    assert sent.body["messages"] == [{"role": "user", "content": "What is six times seven?"}]
    assert "seed" not in sent.body and sent.headers["authorization"] == "Bearer test-key"


def test_plain_text_request_has_no_response_format_and_sends_seed(serve, make_chat):
    stub = serve(completion("forty-two"))
    result = ask(make_chat(stub), request(schema=None, seed=7, temperature=0.3))
    assert (result.error, result.text, result.data) == (None, "forty-two", None)
    assert "response_format" not in stub.bodies[0]
    assert stub.bodies[0]["seed"] == 7 and stub.bodies[0]["temperature"] == 0.3


def test_identical_call_is_a_cache_hit_without_http(serve, make_chat):
    stub = serve(OK)
    chat = make_chat(stub)
    first, second = ask(chat, request()), ask(chat, request(tag="other-tag"))  # tag: ledger only
    assert len(stub.requests) == 1
    assert second.cached and not first.cached and second.data == first.data == {"answer": "42"}
    assert chat.ledger.totals()["calls"] == 2 and chat.ledger.totals()["cache_hits"] == 1
    rerun = make_chat(stub)  # a new stage over the same cache dir pays for nothing again
    assert ask(rerun, request()).cached and len(stub.requests) == 1
    assert rerun.ledger.totals()["cache_hits"] == 1 and rerun.ledger.totals()["cost_usd"] == 0


@pytest.mark.parametrize("change", [
    {"temperature": 0.7},
    {"content": "What is six times eight?"},
    {"schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}},
    {"max_tokens": 65},
    {"seed": 1},
])
def test_any_sampling_or_prompt_change_misses_the_cache(serve, make_chat, change):
    stub = serve(OK)
    chat = make_chat(stub)
    ask(chat, request())
    assert not ask(chat, request(**change)).cached
    assert len(stub.requests) == 2
    assert ask(chat, request(**change)).cached and len(stub.requests) == 2


def test_model_id_is_part_of_the_cache_key(serve, make_chat):
    stub = serve(OK)
    ask(make_chat(stub), request())
    assert not ask(make_chat(stub, model_id="stub-model@2"), request()).cached
    assert len(stub.requests) == 2


def test_server_error_then_success_is_retried(serve, make_chat):
    stub = serve(error(500), OK)
    chat = make_chat(stub)
    result = ask(chat, request())
    assert result.error is None and result.data == {"answer": "42"}
    assert len(stub.requests) == 2 and chat.ledger.totals()["errors"] == 0


def test_rate_limit_honours_retry_after(serve, make_chat):
    stub = serve(error(429, "slow down", headers={"Retry-After": "1"}), OK)
    start = time.monotonic()
    result = ask(make_chat(stub), request())
    assert result.error is None and len(stub.requests) == 2
    assert time.monotonic() - start >= 0.95  # backoff alone would be 0.25 s here


def test_unusable_retry_after_falls_back_to_backoff(serve, make_chat):
    stub = serve(error(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), OK)
    start = time.monotonic()
    assert ask(make_chat(stub), request()).error is None and len(stub.requests) == 2
    assert 0.2 <= time.monotonic() - start < 0.9  # the first backoff (0.25 s without jitter)


def test_timeout_is_retried(serve, make_chat):
    stub = serve(HANG, OK)
    start = time.monotonic()
    result = ask(make_chat(stub, timeout_s=0.3), request())
    assert result.error is None and len(stub.requests) == 2
    assert 0.3 <= time.monotonic() - start < 5


def test_dropped_connection_is_retried(serve, make_chat):
    stub = serve(DROP, OK)
    result = ask(make_chat(stub), request())
    assert result.error is None and result.data == {"answer": "42"} and len(stub.requests) == 2


def test_exhausted_retries_return_an_error_and_cache_nothing(serve, make_chat):
    stub = serve(error(503, "overloaded"))
    chat = make_chat(stub)
    result = ask(chat, request())  # returns, never raises
    assert result.data is None and "InternalServerError" in result.error and "overloaded" in result.error
    assert len(stub.requests) == 4  # 1 + max_retries
    assert len(chat.cache) == 0
    assert chat.ledger.totals()["errors"] == 1 and chat.ledger.totals()["calls"] == 1


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_not_retried(serve, make_chat, status):
    stub = serve(error(status, "bad request body"), OK)
    chat = make_chat(stub)
    result = ask(chat, request())
    assert result.error.startswith(f"HTTP {status}") and "bad request body" in result.error
    assert len(stub.requests) == 1 and len(chat.cache) == 0


def test_empty_choices_is_an_error(serve, make_chat):
    stub = serve(completion("{}") | {"choices": []})
    chat = make_chat(stub)
    result = ask(chat, request())
    assert result.error == "empty choices" and result.data is None
    assert len(stub.requests) == 2 and len(chat.cache) == 0  # a bad reply is retried once


def test_empty_text_without_schema_is_an_error(serve, make_chat):
    stub = serve(completion(""), completion(None))
    result = ask(make_chat(stub), request(schema=None))
    assert result.error == "empty output" and len(stub.requests) == 2


def test_unparsable_reply_is_retried_once_then_ok(serve, make_chat):
    stub = serve(completion("Sorry, I cannot answer that."), OK)
    result = ask(make_chat(stub), request())
    assert result.error is None and result.data == {"answer": "42"}
    assert [b["max_tokens"] for b in stub.bodies] == [64, 64]  # not cut: same budget


def test_unparsable_twice_gives_up_after_one_retry(serve, make_chat):
    stub = serve(completion("no json here"))
    chat = make_chat(stub)
    result = ask(chat, request())
    assert result.error.startswith("unparsable output") and result.text == "no json here"
    assert len(stub.requests) == 2 and len(chat.cache) == 0


def test_cut_reply_is_retried_with_twice_the_tokens(serve, make_chat):
    stub = serve(completion('{"answer": "4", "note', finish_reason="length"), OK)  # unrepairable
    result = ask(make_chat(stub), request())
    assert result.error is None and result.finish_reason == "stop"
    assert [b["max_tokens"] for b in stub.bodies] == [64, 128]


def test_cut_reply_that_parse_can_repair_is_still_retried(serve, make_chat):
    stub = serve(completion('{"answer": "The answer is forty', finish_reason="length"), OK)
    result = ask(make_chat(stub), request())
    assert [b["max_tokens"] for b in stub.bodies] == [64, 128]
    assert result.data == {"answer": "42"} and result.finish_reason == "stop"


@pytest.mark.parametrize("reply", [
    (200, {}, "<html>gateway says hi</html>"),
    (200, {"Content-Type": "application/json"}, '{"choices": [tr'),
])
def test_malformed_200_body_is_an_error_result_not_an_exception(serve, make_chat, reply):
    stub = serve(lambda body: reply if body["messages"][0]["content"] == "bad" else OK)
    results = run_batch(make_chat(stub, max_retries=1), [request("a"), request("bad"), request("c")])
    assert [r.error is None for r in results] == [True, False, True]


def _echo(body: dict) -> dict:
    """Answers {"i": n} to the prompt "item n", so results can be matched to requests."""
    index = int(body["messages"][0]["content"].split()[1])
    return completion(json.dumps({"i": index}), prompt_tokens=index, completion_tokens=1)


def test_run_batch_keeps_order_and_bounds_concurrency(serve, make_chat):
    stub = serve(_echo, delay=0.05)
    results = run_batch(make_chat(stub, concurrency=3), [request(f"item {i}") for i in range(20)])
    assert [r.data for r in results] == [{"i": i} for i in range(20)]
    assert len(stub.requests) == 20
    assert 2 <= stub.max_in_flight <= 3


def test_client_semaphore_bounds_concurrency_without_run_batch(serve, make_chat):
    stub = serve(_echo, delay=0.05)
    chat = make_chat(stub, concurrency=2)

    async def main():
        return await asyncio.gather(*(chat.complete(request(f"item {i}")) for i in range(8)))

    assert [r.data["i"] for r in asyncio.run(main())] == list(range(8))
    assert stub.max_in_flight == 2


def test_consecutive_run_batch_calls_reuse_the_model(serve, make_chat):
    stub = serve(_echo)
    chat = make_chat(stub, concurrency=2)
    first = run_batch(chat, [request(f"item {i}") for i in range(4)])
    second = run_batch(chat, [request(f"item {i}") for i in range(2, 8)])  # a new event loop
    assert [r.data["i"] for r in first + second] == [0, 1, 2, 3, 2, 3, 4, 5, 6, 7]
    assert [r.cached for r in second] == [True, True, False, False, False, False]
    assert all(r.error is None for r in first + second) and len(stub.requests) == 8


def test_ledger_flat_keys_totals_and_cost(serve, make_chat):
    stub = serve(lambda body: error(400) if body["messages"][0]["content"] == "bad" else
                 completion('{"answer": "x"}', prompt_tokens=1000, completion_tokens=250))
    chat = make_chat(stub, price_in=2.0, price_out=8.0, concurrency=1)  # USD per 1M tokens
    run_batch(chat, [request("a", tag="gen"), request("b", tag="gen"), request("a", tag="judge"),
                     request("bad", tag="judge")])
    flat = chat.ledger.flat()
    per = ("calls", "cache_hits", "errors", "completion_tokens", "cost_usd")
    totals = ("calls", "cache_hits", "errors", "prompt_tokens", "completion_tokens", "cached_prompt_tokens",
              "cached_completion_tokens", "cost_usd", "seconds")
    assert set(flat) == ({f"llm.{k}" for k in (*totals, "model_calls")} | {"llm.stub.error.HTTP_400"}
                         | {f"llm.stub.{tag}.{k}" for tag in ("gen", "judge") for k in per})
    assert {k: flat[f"llm.stub.gen.{k}"] for k in per} == {
        "calls": 2, "cache_hits": 0, "errors": 0, "completion_tokens": 500, "cost_usd": 0.008}
    assert flat["llm.stub.judge.errors"] == 1 and flat["llm.stub.judge.calls"] == 2
    assert flat["llm.stub.error.HTTP_400"] == 1  # errors by kind, per endpoint
    assert (flat["llm.calls"], flat["llm.errors"], flat["llm.cost_usd"]) == (4, 1, 0.008)
    assert flat["llm.cache_hits"] == 1 and flat["llm.seconds"] > 0 and flat["llm.model_calls"] == 3
    assert flat["llm.completion_tokens"] == 500 and flat["llm.cached_completion_tokens"] == 250  # "a" again
    assert flat["llm.prompt_tokens"] == 2000 and flat["llm.cached_prompt_tokens"] == 1000
    assert set(chat.ledger.flat("x")) == {k.replace("llm.", "x.", 1) for k in flat}
    assert all(isinstance(v, float) for v in flat.values())


def test_cost_is_per_million_tokens(serve, make_chat):
    stub = serve(completion('{"answer": "x"}', prompt_tokens=1000, completion_tokens=500))
    chat = make_chat(stub, price_in=0.15, price_out=0.60)
    ask(chat, request())
    assert chat.ledger.totals()["cost_usd"] == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1e6)


def _params(tmp_path: Path, endpoint: dict) -> Params:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["llm"] = {"cache_dir": str(tmp_path / "cache"),  # the others stay: params may refer to them
                  "endpoints": raw["llm"]["endpoints"] | {"remote": endpoint}}
    raw["generate"]["endpoint"] = "remote"
    raw["critique"]["judges"] = ["remote"]
    return Params.model_validate(raw)


def test_open_models_without_key_variable_sends_a_placeholder(tmp_path, serve):
    stub = serve(OK)
    params = _params(tmp_path, {"base_url": stub.base_url, "model": "local", "concurrency": 3})
    with open_models(params, ["remote"], Ledger()) as models:
        assert (models["remote"].concurrency, models["remote"].model_id) == (3, f"{stub.base_url}|local")
        run_batch(models["remote"], [request()])
    assert stub.requests[0].headers["authorization"] == "Bearer not-needed"
    assert describe("remote", params.llm.endpoints["remote"]) == {
        "endpoint": "remote", "model": "local", "server": stub.base_url}


def test_open_models_names_the_missing_key_variable(tmp_path, monkeypatch, serve):
    monkeypatch.delenv("ASSAY_TEST_API_KEY", raising=False)
    stub = serve(OK)
    params = _params(tmp_path, {"base_url": stub.base_url, "model": "gpt-stub",
                                "api_key_env": "ASSAY_TEST_API_KEY"})
    with pytest.raises(AssayError, match=r"llm\.endpoints\.remote.*ASSAY_TEST_API_KEY is not set"), \
            open_models(params, ["remote"], Ledger()):
        pass
    assert not stub.requests


def test_open_models_sends_the_key_but_never_records_it(tmp_path, monkeypatch, serve):
    secret = "sk-test-5ecret-do-not-log"
    monkeypatch.setenv("ASSAY_TEST_API_KEY", secret)
    stub = serve(OK)
    params = _params(tmp_path, {"base_url": stub.base_url, "model": "gpt-stub",
                                "api_key_env": "ASSAY_TEST_API_KEY", "max_retries": 0,
                                "price_in_per_1m": 1.0})
    ledger = Ledger()
    with open_models(params, ["remote", "remote"], ledger) as models:
        assert list(models) == ["remote"]
        [result] = run_batch(models["remote"], [request()])
    assert result.error is None and result.data == {"answer": "42"}
    [sent] = stub.requests
    assert sent.headers["authorization"] == f"Bearer {secret}" and sent.body["model"] == "gpt-stub"
    recorded = json.dumps([ledger.flat(), describe("remote", params.llm.endpoints["remote"])])
    assert "remote" in recorded and secret not in recorded
    assert secret.encode() not in (tmp_path / "cache" / "responses.sqlite").read_bytes()

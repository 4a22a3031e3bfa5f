"""Fault injection against the real client code path: the official `openai` client talks HTTP to
tests/fault_server.py, which fails requests on purpose (timeouts, 429 + Retry-After, 500/503,
dropped connections, truncated and malformed JSON, empty choices, finish_reason=length)."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace

import pandas as pd
import pytest

from assay.llm import ChatRequest, Ledger, run_batch
from assay.llm import client as client_mod
from assay.llm.cache import ResponseCache
from assay.llm.client import OpenAIChat, error_kind
from tests.fault_server import (
    FAULT_KINDS,
    Faults,
    fault_stub,
    run_script,
    schema_reply,
    stage_params,
    write_chunks,
)
from tests.openai_stub import OpenAIStub, completion, error

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@pytest.fixture(autouse=True)
def no_jitter(monkeypatch):
    monkeypatch.setattr(client_mod, "random", SimpleNamespace(random=lambda: 0.0))


@pytest.fixture
def chat(tmp_path):
    caches = []

    def make(stub: OpenAIStub, **overrides) -> OpenAIChat:
        caches.append(ResponseCache(tmp_path / "cache"))
        options = {"base_url": stub.base_url, "model": "stub-model", "api_key": "k", "model_id": "stub@1",
                   "cache": caches[-1], "ledger": Ledger(), "concurrency": 4, "timeout_s": 0.5,
                   "max_retries": 4}
        return OpenAIChat("faulty", **(options | overrides))

    yield make
    for cache in caches:
        cache.close()


def req(i: int = 0) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": f"item {i}"}], schema=SCHEMA, max_tokens=32)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_once_then_success(chat, kind):
    faults = Faults(retry_after="0", hang_s=5)
    with OpenAIStub([lambda body: faults.fault(kind, body), schema_reply]) as stub:
        [result] = run_batch(chat(stub), [req()])
    assert result.error is None and result.data == {"answer": "stub text"}
    assert len(stub.requests) == 2
    if kind == "length":  # a cut reply is retried with twice the budget
        assert [b["max_tokens"] for b in stub.bodies] == [32, 64]


def test_batch_under_30_percent_faults_loses_nothing(chat):
    stub, faults = fault_stub(rate=0.3, seed=3, retry_after="0", hang_s=5)
    with stub:
        model = chat(stub, concurrency=8, max_retries=6)
        results = run_batch(model, (req(i) for i in range(60)))  # a generator: consumed lazily
    assert len(results) == 60 and len(faults.injected) >= 6  # most fault kinds were served
    errors = [r for r in results if r.error]
    totals = model.ledger.totals()
    assert totals["calls"] == 60 and totals["errors"] == len(errors)
    assert sum(model.ledger.error_kinds.values()) == len(errors)  # every failure counted by kind
    assert len(errors) <= 3  # only two content faults in a row exhaust a call
    assert len(model.cache) == 60 - len(errors)


def test_429_halves_concurrency_and_it_recovers(chat):
    calls = {"n": 0}

    def answer(body):
        calls["n"] += 1
        return error(429, "slow down", {"Retry-After": "0"}) if calls["n"] <= 8 else schema_reply(body)

    with OpenAIStub([answer], delay=0.02) as stub:
        model = chat(stub, concurrency=8)
        results = run_batch(model, [req(i) for i in range(80)])
    assert all(r.error is None for r in results)
    assert model.limiter.min_limit <= 4 and model.limiter.decreases >= 1
    assert model.limiter.limit == 8  # back to the configured concurrency
    assert model.ledger.flat()["llm.faulty.concurrency_min"] == model.limiter.min_limit  # in stage metrics
    assert stub.max_in_flight <= 8


def test_overload_slows_the_client_down(chat):
    """While the server answers 503, fewer requests are in flight than configured."""
    in_flight_at_503: list[int] = []
    state = {"n": 0}

    def answer(body):
        state["n"] += 1
        if state["n"] <= 30:
            return error(503, "overloaded", {"Retry-After": "0"})
        return schema_reply(body)

    stub = OpenAIStub([answer], delay=0.2)

    def spy(body):
        in_flight_at_503.append(stub._in_flight)
        return answer(body)

    stub.script[0] = spy
    with stub:
        model = chat(stub, concurrency=8, max_retries=8)
        run_batch(model, [req(i) for i in range(40)])
    assert max(in_flight_at_503[:8]) >= 6  # full speed before the first 503 came back
    assert max(in_flight_at_503[20:30]) <= 4  # halved (at least once) while overloaded


def test_retry_after_is_honoured_under_faults(chat):
    stub = OpenAIStub([error(429, headers={"Retry-After": "1"}), completion('{"answer": "x"}')])
    with stub:
        start = time.monotonic()
        [result] = run_batch(chat(stub), [req()])
    assert result.error is None and time.monotonic() - start >= 0.95


def test_error_kind_names():
    assert error_kind("RateLimitError: Error code: 429 - slow") == "RateLimitError"
    assert error_kind("HTTP 401: bad key") == "HTTP_401"
    assert error_kind("unparsable output (no JSON object; finish_reason=stop)") == "unparsable_output"
    assert error_kind("cut by the token limit (64 tokens; finish_reason=length)") == "cut_by_the_token_limit"
    assert error_kind("empty choices") == "empty_choices"


def test_unreachable_endpoint_fails_fast(chat, tmp_path):
    import socket

    from assay.errors import AssayError

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stub = SimpleNamespace(base_url=f"http://127.0.0.1:{port}/v1")
    start = time.monotonic()
    with pytest.raises(AssayError, match=r"llm\.endpoints\.faulty: cannot connect to http://127\.0\.0\.1"):
        asyncio.run(chat(stub, max_retries=10).complete(req()))
    assert time.monotonic() - start < 5


def _stage(tmp_path, stub: OpenAIStub, n: int, **endpoint):
    chunks = write_chunks(tmp_path / "chunks.parquet", n)
    params = stage_params(tmp_path / "params.yaml", stub.base_url, tmp_path / "cache",
                          endpoint={"timeout_s": 0.5, "concurrency": 6} | endpoint,
                          generate={"max_chunks": 0, "max_error_rate": 0.25})
    out, metrics = tmp_path / "samples.parquet", tmp_path / "generate.json"
    done = run_script("generate", "--params", str(params), "--chunks", str(chunks), "--out", str(out),
                      "--metrics", str(metrics), "--lessons", str(tmp_path / "none.md"),
                      "--responses", str(tmp_path / "responses.jsonl"))
    return done, out, metrics


def test_generate_stage_completes_under_faults(tmp_path):
    stub, faults = fault_stub(rate=0.25, seed=11, retry_after="0", hang_s=3)
    with stub:
        done, out, metrics_path = _stage(tmp_path, stub, 30, max_retries=6)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = pd.read_parquet(out)
    metrics = json.loads(metrics_path.read_text())
    assert len(rows) == 30 and rows["id"].is_unique  # nothing lost, nothing doubled
    assert metrics["samples"] == 30 and metrics["errors"] == int(rows["error"].notna().sum())
    assert sum(faults.injected.values()) >= 5


def test_generate_stage_fails_above_max_error_rate_naming_endpoint_and_counts(tmp_path):
    with OpenAIStub([error(503, "overloaded", {"Retry-After": "0"})]) as stub:
        done, out, _ = _stage(tmp_path, stub, 4, max_retries=1)
    assert done.returncode == 1
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("assay generate: failed: 4/4 generation calls failed (100% > max_error_rate 25%)")
    assert "endpoint 'stub'" in message and "errors by kind: endpoint 'stub': InternalServerError 4" in message
    rows = pd.read_parquet(out)  # the failed rows are kept, with their error
    assert len(rows) == 4 and rows["error"].str.contains("InternalServerError").all()


def test_samples_failing_their_kinds_checks_are_counted_not_an_endpoint_failure(tmp_path):
    """A small model whose samples often fail the checks is working; a stage where none passes is not."""
    good = completion(json.dumps({"evidence": ["Refunds take 7 days."], "question": "How long do refunds take?",
                                  "answer": "Refunds take 7 days."}))
    labelled = completion(json.dumps({"evidence": ["Refunds take 7 days."], "question": "Customer: refunds?",
                                      "answer": "Agent: Refunds take 7 days."}))
    turn = iter(range(100))
    with OpenAIStub([lambda body: labelled if next(turn) % 4 else good]) as stub:  # 3 of 4 fail the checks
        done, _, metrics_path = _stage(tmp_path, stub, 8)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads(metrics_path.read_text())
    assert (metrics["call_errors"], metrics["check_rejected"], metrics["parsed"]) == (0, 6, 2)
    assert metrics["error.speaker_label_in_the_text"] == 6
    with OpenAIStub([labelled]) as stub:
        done, _, _ = _stage(tmp_path / "none", stub, 4) if (tmp_path / "none").mkdir() is None else None
    assert done.returncode == 1
    assert "none of 4 samples passed its kind's checks on endpoint 'stub'" in done.stderr


def test_connect_check_is_skipped_behind_a_proxy(chat, monkeypatch):
    """With HTTPS_PROXY set, a direct connect would fail where the client (via the proxy) works."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    model = chat(SimpleNamespace(base_url="https://unreachable.invalid/v1"))
    asyncio.run(model._reachable("https://unreachable.invalid/v1"))  # returns: no direct connect tried


def test_a_huge_retry_after_is_capped(chat, monkeypatch):
    monkeypatch.setattr(client_mod, "MAX_RETRY_AFTER_S", 0.3)
    with OpenAIStub([error(429, headers={"Retry-After": "86400"}), completion('{"answer": "x"}')]) as stub:
        start = time.monotonic()
        [result] = run_batch(chat(stub), [req()])
    assert result.error is None and time.monotonic() - start < 5

"""Endpoints with `batch: true`: run_batch goes through the Batch API of tests/batch_stub.py
(real HTTP, the real `openai` client): chunked submission, polling, partial failures and expiry,
resubmission, batch prices in the ledger, and re-attaching after the submitting process is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from assay.config import Params
from assay.llm import Ledger, describe, open_models, run_batch
from assay.llm.cache import ResponseCache
from tests.batch_stub import BatchStub, echo
from tests.batch_worker import batch_chat, requests
from tests.openai_stub import completion

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def stub():
    with BatchStub() as server:
        yield server
    assert not server.errors, server.errors


@pytest.fixture
def cache(tmp_path):
    opened = ResponseCache(tmp_path / "cache")
    yield opened
    opened.close()


def answers(results) -> list[str | None]:
    return [r.data["answer"] if r.data else None for r in results]


def test_submits_in_chunks_polls_and_answers_in_order_at_batch_prices(stub, cache):
    chat = batch_chat(stub.base_url, cache, max_requests=3)
    results = run_batch(chat, requests(7))
    assert answers(results) == [f"question {i}" for i in range(7)]  # each reply went to its own request
    assert [len(stub.input_lines(b)) for b in stub.batches.values()] == [3, 3, 1]
    assert stub.count("POST /v1/files") == 3 and stub.count("POST /v1/batches") == 3
    assert stub.count("GET /v1/batches/batch") >= 2 * 3  # validating -> in_progress -> completed
    line = stub.input_lines(next(iter(stub.batches.values())))[0]
    assert line["url"] == "/v1/chat/completions" and line["body"]["model"] == "stub-model"
    assert line["body"]["response_format"]["type"] == "json_schema" and line["body"]["max_tokens"] == 64
    assert line["custom_id"] == chat._key(requests(1)[0])  # the cache key: answers land in the cache
    totals = chat.ledger.totals()
    assert totals["calls"] == 7 and totals["errors"] == 0 and totals["prompt_tokens"] == 70
    assert totals["cost_usd"] == pytest.approx(7 * (10 * 2.0 + 5 * 8.0) / 1e6 * 0.5)  # half the live price
    assert chat.ledger.flat()["llm.hosted.batch.completed"] == 3.0
    again = batch_chat(stub.base_url, cache, max_requests=3)
    assert all(r.cached for r in run_batch(again, requests(7)))  # a rerun is all cache hits
    assert stub.count("POST /v1/batches") == 3 and again.ledger.totals()["cost_usd"] == 0


def test_batch_size_in_bytes_splits_too(stub, cache):
    one_line = len(json.dumps({"custom_id": "k" * 64, "method": "POST", "url": "/v1/chat/completions",
                               "body": batch_chat(stub.base_url, cache)._kwargs(requests(1)[0], 64)}))
    chat = batch_chat(stub.base_url, cache, max_bytes=int(one_line * 2.5))
    assert answers(run_batch(chat, requests(5))) == [f"question {i}" for i in range(5)]
    assert [len(stub.input_lines(b)) for b in stub.batches.values()] == [2, 2, 1]


def test_failed_and_expired_requests_are_resubmitted_and_refusals_are_not(cache):
    seen: dict[str, int] = {}

    def answer(body):
        question = body["messages"][-1]["content"]
        seen[question] = seen.get(question, 0) + 1
        if question == "question 4":
            return 400, {"error": {"message": "invalid request", "type": "invalid_request_error"}}
        if question == "question 3" and seen[question] == 1:
            return 500, {"error": {"message": "internal", "type": "server_error"}}
        return echo(body)

    with BatchStub(answer=answer, expire={0}, expire_keep=1) as stub:
        chat = batch_chat(stub.base_url, cache, max_requests=3)
        results = run_batch(chat, requests(6))
        first_round = [b for b in stub.batches.values() if b["_number"] < 2]
        assert [b["status"] for b in first_round] == ["expired", "completed"]
        resubmitted = sorted(json.loads(json.dumps(line["body"]))["messages"][-1]["content"]
                             for b in list(stub.batches.values())[2:] for line in stub.input_lines(b))
    # batch 0 (q0-q2) answered one line and expired; batch 1: q3 failed (500), q4 refused (400), q5 ok
    assert resubmitted == ["question 1", "question 2", "question 3"]
    assert answers(results) == ["question 0", "question 1", "question 2", "question 3", None, "question 5"]
    assert results[4].error.startswith("HTTP 400: invalid request")
    flat = chat.ledger.flat()
    assert flat["llm.hosted.batch.expired"] == 1 and flat["llm.hosted.batch.resubmitted_requests"] == 3
    assert flat["llm.hosted.error.HTTP_400"] == 1 and flat["llm.errors"] == 1


def test_a_cut_reply_is_resubmitted_with_twice_the_budget(cache):
    def answer(body):
        return completion('{"answer": "cut', finish_reason="length") if body["max_tokens"] == 64 else echo(body)

    with BatchStub(answer=answer) as stub:
        results = run_batch(batch_chat(stub.base_url, cache), requests(2))
        budgets = [line["body"]["max_tokens"] for b in stub.batches.values() for line in stub.input_lines(b)]
    assert answers(results) == ["question 0", "question 1"] and budgets == [64, 64, 128, 128]


def test_requests_still_failing_after_the_last_round_come_back_as_errors(cache):
    with BatchStub(answer=lambda body: (500, {"error": {"message": "down"}}), expire={1}) as stub:
        chat = batch_chat(stub.base_url, cache, resubmits=1)
        results = run_batch(chat, requests(3))
        assert len(stub.batches) == 2  # one round + one resubmission
    assert all(r.error and r.data is None for r in results) and len(cache) == 0
    assert results[0].error.startswith("HTTP 500")  # round 2 expired after one line: q0 has its own error
    assert results[1].error.startswith("batch error batch_expired")
    assert chat.ledger.totals()["errors"] == 3


def _worker(stub: BatchStub, cache_dir: Path, n: int, max_requests: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    return subprocess.Popen([sys.executable, "-m", "tests.batch_worker", stub.base_url, str(cache_dir), str(n),
                             str(max_requests)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _until(condition, proc: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the worker ended before {what}: {proc.stderr.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_killed_stage_reattaches_to_its_batches_instead_of_resubmitting(tmp_path):
    with BatchStub() as stub:
        stub.hold.clear()  # batches stay in_progress: the worker is killed while it polls
        proc = _worker(stub, tmp_path / "cache", 5, 3)
        _until(lambda: stub.count("POST /v1/batches") == 2 and stub.count("GET /v1/batches/batch") >= 4, proc,
               "both batches were submitted and polled")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stub.hold.set()
        cache = ResponseCache(tmp_path / "cache")
        chat = batch_chat(stub.base_url, cache, max_requests=3, ledger=Ledger())
        results = run_batch(chat, requests(5))
        cache.close()
        assert stub.count("POST /v1/batches") == 2 and stub.count("POST /v1/files") == 2  # nothing twice
    assert answers(results) == [f"question {i}" for i in range(5)]
    flat = chat.ledger.flat()
    assert flat["llm.hosted.batch.reattached"] == 2 and "llm.hosted.batch.submitted" not in flat


def test_a_stage_killed_while_creating_finds_the_batch_by_its_input_file(tmp_path):
    import threading

    with BatchStub(create_gate=threading.Event()) as stub:
        proc = _worker(stub, tmp_path / "cache", 2, 10)
        _until(lambda: stub.count("POST /v1/batches") == 1, proc, "the batch was created")
        os.kill(proc.pid, signal.SIGKILL)  # the provider has the batch; the worker never learnt its id
        proc.wait()
        stub.create_gate.set()
        cache = ResponseCache(tmp_path / "cache")
        results = run_batch(batch_chat(stub.base_url, cache), requests(2))
        cache.close()
        assert stub.count("POST /v1/batches") == 1 and stub.count("GET /v1/batches") == 1  # listed, not created
    assert answers(results) == ["question 0", "question 1"]


def test_a_batch_endpoint_in_params_records_the_same_responses_file(tmp_path, stub):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    endpoint = {"base_url": stub.base_url, "model": "stub-model", "batch": True, "batch_poll_s": 0.01,
                "batch_poll_max_s": 0.05, "batch_discount": 0.5, "price_in_per_1m": 2.0, "rpm": 500, "tpm": 90000}
    raw["llm"] = {"cache_dir": str(tmp_path / "cache"), "endpoints": raw["llm"]["endpoints"] | {"remote": endpoint}}
    params = Params.model_validate(raw)
    responses = tmp_path / "responses.jsonl"
    with open_models(params, ["remote"], Ledger(), responses=responses) as models:
        results = run_batch(models["remote"], requests(3))
        assert models["remote"].rate.requests.capacity == 500 and models["remote"].rate.tokens.capacity == 90000
    assert answers(results) == ["question 0", "question 1", "question 2"]
    assert describe("remote", params.llm.endpoints["remote"])["mode"] == "batch API"
    assert len(responses.read_text().splitlines()) == 3 and stub.count("POST /v1/batches") == 1
    clone = params.model_copy(update={"llm": params.llm.model_copy(update={"cache_dir": str(tmp_path / "fresh")})})
    with open_models(clone, ["remote"], Ledger(), responses=responses) as models:  # a clone replays the file
        assert all(r.cached for r in run_batch(models["remote"], requests(3)))
    assert stub.count("POST /v1/batches") == 1


def test_the_batches_command_lists_and_cancels_what_a_killed_stage_left_in_flight(tmp_path, capsys):
    from assay.cli import main

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    with BatchStub() as stub:
        raw["llm"]["cache_dir"] = str(tmp_path / "cache")
        raw["llm"]["endpoints"]["remote"] = {"base_url": stub.base_url, "model": "stub-model", "batch": True}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
        stub.hold.clear()
        proc = _worker(stub, tmp_path / "cache", 3, 10)
        _until(lambda: stub.count("GET /v1/batches/batch") >= 2, proc, "the batch was polled")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert main(["batches", "--params", str(tmp_path / "params.yaml")]) == 0
        assert main(["batches", "--params", str(tmp_path / "params.yaml"), "--cancel"]) == 0
        stub.hold.set()
        cache = ResponseCache(tmp_path / "cache")
        chat = batch_chat(stub.base_url, cache, max_requests=10)
        results = run_batch(chat, requests(3))  # cancelled with nothing done: all three submitted again
        cache.close()
        assert stub.count("POST /v1/batches/batch/cancel") == 1 and stub.count("POST /v1/batches") == 2
    listed, cancelled = capsys.readouterr().out.splitlines()
    assert listed.split() == ["remote", "batch-2", "in_progress", "3", "requests"]
    assert cancelled.split() == ["remote", "batch-2", "cancelling", "3", "requests"]
    assert answers(results) == [f"question {i}" for i in range(3)]
    assert chat.ledger.flat()["llm.hosted.batch.cancelled"] == 1


def test_a_recorded_batch_the_provider_does_not_know_is_submitted_afresh(stub, cache):
    from assay.llm.batchstate import BatchState

    chat = batch_chat(stub.base_url, cache)
    state = BatchState(cache.path)
    state.uploaded(chat.model_id, "file-gone", {chat._key(r): 64 for r in requests(2)})
    state.created("file-gone", "batch-gone")  # e.g. recorded under another account's key
    state.close()
    assert answers(run_batch(chat, requests(2))) == ["question 0", "question 1"]
    assert stub.count("GET /v1/batches/batch-gone") == 1 and stub.count("POST /v1/batches") == 1


def test_the_same_request_twice_is_sent_once_and_paid_once(stub, cache):
    chat = batch_chat(stub.base_url, cache)
    twice = requests(2) + requests(1)
    results = run_batch(chat, twice)
    assert answers(results) == ["question 0", "question 1", "question 0"] and results[2].cached
    assert len(stub.input_lines(next(iter(stub.batches.values())))) == 2
    assert chat.ledger.totals()["cache_hits"] == 1 and chat.ledger.totals()["prompt_tokens"] == 20


def test_an_unreachable_batch_api_fails_the_stage_naming_the_endpoint(cache):
    import socket

    from assay.errors import AssayError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket closes
    chat = batch_chat(f"http://127.0.0.1:{port}/v1", cache)
    with pytest.raises(AssayError, match=r"llm.endpoints.hosted: Batch API upload failed .*rerun the stage"):
        run_batch(chat, requests(2))

import json

import pandas as pd
import pytest

from assay.config import Generate
from assay.generate import can_ground, generate, ledger_by_kind, plan, quotas
from assay.llm import ChatResult, Ledger
from assay.records import GENERATE_COLUMNS
from tests.fakes import FakeChat

CHUNKS = pd.DataFrame([
    {"chunk_id": f"c{i}", "source": "manual.md", "section": f"S{i}", "position": i,
     "text": f"The H2 warranty lasts {i + 12} months from the date of purchase. Keep the receipt.",
     "n_tokens": 20, "content_hash": f"h{i}"}
    for i in range(6)
])

POLICY = "Never bypass the C-wire protection breaker. Tier 1 agents may not refund more than $50."
API = ("PUT /devices/{device_id}/target-temperature (operationId: setTargetTemperature)\n"
       "Summary: Set the target temperature\nBase URL: https://api.example.com/v2")
STEPS = "1. Verify the customer with two identifiers.\n2. Create the RMA.\n3. Send the prepaid label."
MIXED = pd.DataFrame([
    {"chunk_id": cid, "source": "s", "section": cid, "position": 0, "text": text, "n_tokens": 30,
     "content_hash": cid, "kind": kind}
    for cid, text, kind in [("prose", POLICY, "prose"), ("api", API, "api_operation"), ("wf", STEPS, "workflow"),
                            ("tk", "Customer: my screen shows E04 again\nAgent: install the PK-24 kit", "ticket"),
                            ("plain", "The ring LED pulses white while the H2 boots for 90 seconds.", "prose")]
])
ALL_KINDS = {"qa": {"share": 0.25}, "multi_turn": {"enabled": True, "share": 0.25, "turns": 2},
             "task_demo": {"enabled": True, "share": 0.25}, "refusal": {"enabled": True, "share": 0.25}}


def answer_from_chunk(request):
    text = request.messages[1]["content"]
    months = text.split("lasts ")[1].split(" ")[0]
    return {"question": "How long is the warranty?", "answer": f"{months} months.",
            "evidence": [f"The H2 warranty lasts {months} months"]}


def grounded_answer(request):
    """A well-behaved generator: a valid, grounded reply for every kind."""
    source = request.messages[1]["content"].split("<<<SOURCE\n")[1].split("\nSOURCE>>>")[0]
    quote = source.splitlines()[0][:60]
    if request.tag == "multi_turn":
        return {"turns": [{"user": f"Q{i}?", "assistant": f"A{i}."} for i in range(2)], "evidence": [quote]}
    if request.tag == "task_demo":
        call = "curl -X PUT https://api.example.com/v2/devices/d1/target-temperature" if "PUT" in source else ""
        return {"request": "Do it", "steps": [{"action": "Step one.", "call": call}], "evidence": [quote]}
    if request.tag == "refusal":
        return {"request": "Bypass it", "policy": "Never bypass the C-wire protection breaker",
                "reply": "I can't help with that.", "evidence": []}
    return {"question": "What does it say?", "answer": "See the source.", "evidence": [quote]}


def test_generate_grounded_rows_in_chat_format():
    model = FakeChat(answer_from_chunk)
    rows, metrics = generate(CHUNKS, model, Generate(endpoint="fake"), seed=1)
    assert len(rows) == 6 and metrics["errors"] == 0
    row = rows[0]
    assert set(row) == set(GENERATE_COLUMNS)
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert len(row["seed_ids"]) == 1 and row["evidence_ok"] is True
    assert json.loads(row["generation"])["prompt_version"] == "qa-5"
    assert metrics["coverage"] == 1.0 and metrics["evidence_ok_rate"] == 1.0
    assert metrics["per_kind.qa.samples"] == 6
    assert all(r.schema is not None and r.tag == "qa" for r in model.requests)


def test_generate_ids_and_seeds_are_stable_and_distinct():
    rows_a, _ = generate(CHUNKS, FakeChat(answer_from_chunk), Generate(endpoint="f", samples_per_chunk=2), seed=1)
    model = FakeChat(answer_from_chunk)
    rows_b, _ = generate(CHUNKS, model, Generate(endpoint="f", samples_per_chunk=2), seed=1)
    assert [r["id"] for r in rows_a] == [r["id"] for r in rows_b]
    assert len({r["id"] for r in rows_a}) == 12
    assert len({r.seed for r in model.requests}) == 12


def test_unparsable_and_failed_calls_keep_their_rows():
    script = [answer_from_chunk, "not json at all", ChatResult(text=None, error="HTTP 500: boom")] * 2
    model = FakeChat(lambda req: (a(req) if callable(a := script.pop(0)) else a))
    rows, metrics = generate(CHUNKS, model, Generate(endpoint="f"), seed=1)
    assert len(rows) == 6 and metrics["errors"] == 4 and metrics["error_rate"] == round(4 / 6, 4)
    assert (metrics["call_errors"], metrics["check_rejected"]) == (4, 0)  # both are the endpoint's failures
    assert metrics["per_kind.qa.error_rate"] == round(4 / 6, 4)
    failed = [r for r in rows if r["error"]]
    assert {r["raw"] for r in failed} == {"not json at all", ""}
    assert all(r["messages"] == [] and r["evidence_ok"] is False for r in failed)


def test_evidence_not_in_chunk_is_flagged():
    model = FakeChat({"question": "Q?", "answer": "A.", "evidence": ["a sentence that is not in the chunk"]})
    rows, metrics = generate(CHUNKS.head(2), model, Generate(endpoint="f"), seed=1)
    assert [r["evidence_ok"] for r in rows] == [False, False]
    assert metrics["coverage"] == 0.0


def test_max_chunks_caps_distinct_chunks_seeded():
    cfg = Generate(endpoint="f", max_chunks=3)
    a, _ = plan(CHUNKS.to_dict("records"), cfg, 7)
    b, _ = plan(CHUNKS.to_dict("records"), cfg, 7)
    assert [j.chunk["chunk_id"] for j in a] == [j.chunk["chunk_id"] for j in b]
    assert len(a) == 3 and len({j.chunk["chunk_id"] for j in a}) == 3
    two = Generate(endpoint="f", max_chunks=3, samples_per_chunk=2)
    jobs, _ = plan(CHUNKS.to_dict("records"), two, 7)
    assert len(jobs) == 6 and len({j.chunk["chunk_id"] for j in jobs}) == 3


def test_quotas_split_by_share():
    cfg = Generate.model_validate({"endpoint": "f", "kinds": ALL_KINDS | {"qa": {"share": 0.4}}})
    q = quotas(cfg.kinds.active(), 10)
    assert sum(q.values()) == 10 and q["qa"] >= 3
    off = Generate.model_validate({"endpoint": "f", "kinds": {"qa": {"enabled": False}, "refusal": {"enabled": True}}})
    assert list(off.kinds.active()) == ["refusal"]


def test_kinds_go_to_chunks_that_can_ground_them():
    chunks = MIXED.to_dict("records")
    assert [c["chunk_id"] for c in chunks if can_ground("task_demo", c)] == ["api", "wf"]
    assert [c["chunk_id"] for c in chunks if can_ground("refusal", c)] == ["prose"]
    cfg = Generate.model_validate({"endpoint": "f", "kinds": ALL_KINDS, "samples_per_chunk": 2})
    jobs, short = plan(chunks, cfg, 3)
    assert len(jobs) == 10 and short == {}
    for job in jobs:
        assert can_ground(job.task, job.chunk)
    assert {j.chunk["chunk_id"] for j in jobs} == {c["chunk_id"] for c in chunks}  # coverage first


def test_a_kind_without_groundable_chunks_is_a_counted_shortfall():
    cfg = Generate.model_validate({"endpoint": "f", "kinds": ALL_KINDS})
    rows, metrics = generate(CHUNKS, FakeChat(answer_from_chunk), cfg, seed=1)  # prose about warranty only
    assert metrics["per_kind.task_demo.shortfall"] > 0 and metrics["per_kind.refusal.shortfall"] > 0


def test_all_four_kinds_grounded_with_controls_and_ledger():
    params = {"endpoint": "f", "kinds": ALL_KINDS | {"refusal": {"enabled": True, "share": 0.25, "temperature": 1.1}},
              "samples_per_chunk": 2, "personas": ["p1", "p2"], "difficulties": ["easy"], "question_styles": ["terse"]}
    cfg = Generate.model_validate(params)
    model = FakeChat(grounded_answer)
    rows, metrics = generate(MIXED, model, cfg, seed=5)
    assert {r["task"] for r in rows} == {"qa", "multi_turn", "task_demo", "refusal"}
    for r in rows:
        assert r["error"] is None and r["evidence_ok"], r
        assert r["persona"] in ("p1", "p2") and r["difficulty"] == "easy" and r["topic"] == r["seed_ids"][0]
        assert r["messages"][0]["role"] == "user" and r["messages"][-1]["role"] == "assistant"
    conv = next(r for r in rows if r["task"] == "multi_turn")
    assert len(conv["messages"]) == 4 and json.loads(conv["generation"])["turns"] == 2
    assert {r.temperature for r in model.requests if r.tag == "refusal"} == {1.1}
    assert metrics["coverage"] == 1.0 and metrics["per_kind.refusal.evidence_ok_rate"] == 1.0
    assert 0 < metrics["diversity.questions.distinct_1"] <= 1 and "diversity.answers.self_bleu" in metrics
    ledger = Ledger()
    for req in model.requests:
        ledger.add("f", req.tag, ChatResult(text="x", prompt_tokens=10, completion_tokens=5), 0.001, 0.1)
    by_kind = ledger_by_kind(ledger)
    assert by_kind["ledger.multi_turn.completion_tokens"] == 5 * sum(r.tag == "multi_turn" for r in model.requests)
    assert by_kind["ledger.qa.cost_usd"] > 0


@pytest.mark.parametrize("kinds", [{"qa": {"enabled": False}}, {"qa": {"share": 0}}])
def test_no_active_kind_is_a_config_error(kinds):
    with pytest.raises(ValueError, match="at least one task kind"):
        Generate.model_validate({"endpoint": "f", "kinds": kinds})


@pytest.mark.parametrize("json_schema, mode", [(True, "pick"), (False, "quote")])
def test_evidence_is_picked_from_the_chunk_only_where_the_endpoint_enforces_schemas(json_schema, mode):
    model = FakeChat(grounded_answer)
    model.json_schema = json_schema
    cfg = Generate(endpoint="fake", max_chunks=5, kinds=ALL_KINDS)
    rows, _ = generate(MIXED, model, cfg, seed=3)
    assert {json.loads(r["generation"])["evidence_mode"] for r in rows} == {mode}
    for req in model.requests:
        items = req.schema["properties"]["evidence"]["items"]
        assert ("enum" in items) is json_schema
        if json_schema:
            source = req.messages[1]["content"].split("<<<SOURCE\n")[1].split("\nSOURCE>>>")[0]
            assert items["enum"] and all(s in source.replace("\n", " ") or s in source for s in items["enum"])


def test_a_customer_turn_in_the_agents_words_is_a_role_swap():
    """Seen from the 1.5B model on a chat chunk: the agent's question asked by the customer."""
    chat = ("Customer: I'd like to return my thermostat, it's been opened.\nAgent: Thanks. You're inside the "
            "45-day window. Is the thermostat faulty, or is this a change of mind?\nCustomer: Change of mind.")
    chunks = pd.DataFrame([{"chunk_id": "t1", "source": "chats.jsonl", "section": "CHT-1", "position": 0,
                            "text": chat, "n_tokens": 40, "content_hash": "t1", "kind": "chat"}])
    swapped = {"question": "Is the thermostat faulty, or is this a change of mind?", "answer": "Change of mind.",
               "evidence": ["Customer: Change of mind."]}
    rows, metrics = generate(chunks, FakeChat(swapped), Generate(endpoint="f"), seed=1)
    assert rows[0]["error"].startswith("role swap: the customer's turn is the agent's words")
    assert metrics["error.role_swap"] == 1 and metrics["check_rejected"] == 1 and metrics["call_errors"] == 0
    asked = {**swapped, "question": "I'd like to return my opened thermostat: is that possible?",
             "answer": "You're inside the 45-day window.", "evidence": ["You're inside the 45-day window."]}
    rows, _ = generate(chunks, FakeChat(asked), Generate(endpoint="f"), seed=1)
    assert rows[0]["error"] is None  # the customer's own words are the customer's

"""Prompt modules of the task kinds (qa with controls, multi_turn, refusal, task_demo): build is
pure and fences the source; parsers take clean, noisy, truncated and malformed replies (raw text
through the client's tolerant JSON extraction, then the parser); the grounding checks."""

import json

import pytest

from assay.llm.parse import parse_json_object
from assay.prompts import (
    controls_text,
    evidence_ok,
    fence,
    multi_turn,
    qa,
    quote_in,
    refusal,
    task_demo,
)

CHUNK = {"source": "safety.md", "section": "Electrical safety", "kind": "prose",
         "text": "Never bypass the C-wire protection breaker. It trips at 2 A and resets after 60 seconds. "
                 "Tier 1 agents may refund up to $50; anything above needs Tier 2."}
API = {"source": "api.yaml", "section": "API > PUT /devices/{device_id}/target-temperature", "kind": "api_operation",
       "text": "PUT /devices/{device_id}/target-temperature (operationId: setTargetTemperature)\n"
               "Summary: Set the target temperature\nBase URL: https://api.example.com/v2\n"
               "Request body (application/json, required):\n  target_celsius: number, minimum 5, maximum 32"}
CONTROLS = {"persona": "an impatient landlord", "topic": "Electrical safety", "difficulty": "advanced",
            "style": "a terse chat message"}


def reply(raw: str):
    """What generate gets from the client for a server reply: the extracted JSON object."""
    data, _ = parse_json_object(raw)
    return data


@pytest.mark.parametrize("module", [qa, multi_turn, refusal, task_demo])
def test_build_is_pure_fenced_and_carries_the_controls(module):
    messages = module.build(CHUNK, CONTROLS)
    assert messages == module.build(CHUNK, CONTROLS)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert fence(CHUNK["text"]) in user and "an impatient landlord" in user and "advanced" in user


def test_controls_text():
    assert controls_text(None) == "" and controls_text({}) == ""
    assert controls_text({"persona": "p"}).startswith("The customer: p.\nThese shape only how the customer words")
    assert "Difficulty: basic." in controls_text({"difficulty": "basic", "style": "terse"})


def test_quote_in_ignores_case_quotes_and_spacing_but_not_content():
    assert quote_in("“It trips at  2 A”", CHUNK["text"])
    assert not quote_in("It trips at 3 A", CHUNK["text"]) and not quote_in("2 A", CHUNK["text"])
    assert evidence_ok(["resets after 60 seconds"], CHUNK["text"]) and not evidence_ok([], CHUNK["text"])


def test_qa_clean_noisy_truncated_malformed():
    clean = {"question": "When does it reset?", "answer": "After 60 seconds.", "evidence": ["resets after 60 seconds"]}
    parsed, err = qa.parse(reply(json.dumps(clean)))
    assert err is None and qa.grounded(parsed, CHUNK["text"]) and qa.to_messages(parsed)[0]["role"] == "user"
    noisy = 'Sure! ```json\n{"question": " Q? ", "answer": "A.", "evidence": "resets after 60 seconds", "x": 1}\n```'
    parsed, err = qa.parse(reply(noisy))
    assert err is None and parsed["question"] == "Q?" and parsed["evidence"] == ["resets after 60 seconds"]
    assert qa.parse(reply('{"question": "Q?", "answer": "A'))[0]["answer"] == "A"  # cut in the answer: closed
    assert qa.parse(reply('{"question": "Q?"'))[1] == "missing answer"
    assert qa.parse(reply("no json here"))[1] == "no JSON object"
    assert qa.parse({"question": 3, "answer": "A"})[1] == "missing question"


TURNS = {"turns": [{"user": "Can I bypass the breaker?", "assistant": "No, never bypass it."},
                   {"user": "When does it reset?", "assistant": "After 60 seconds."},
                   {"user": "At what current?", "assistant": "It trips at 2 A."}],
         "evidence": ["It trips at 2 A and resets after 60 seconds"]}


def test_multi_turn_schema_fixes_the_turn_count():
    schema = multi_turn.schema(4)
    assert schema["properties"]["turns"]["minItems"] == schema["properties"]["turns"]["maxItems"] == 4
    assert schema["properties"]["turns"]["items"]["properties"]["assistant"]["maxLength"] > 0
    assert "exactly 4 turns" in multi_turn.build(CHUNK, CONTROLS, turns=4)[1]["content"]


def test_multi_turn_clean_gives_the_whole_conversation():
    parsed, err = multi_turn.parse(reply(json.dumps(TURNS)), 3)
    assert err is None and multi_turn.grounded(parsed, CHUNK["text"])
    messages = multi_turn.to_messages(parsed)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3
    assert messages[-1]["content"] == "It trips at 2 A."


def test_multi_turn_noisy_truncated_malformed():
    extra = dict(TURNS, turns=TURNS["turns"] + [{"user": "More?", "assistant": "No."}], note="hi")
    assert len(multi_turn.parse(reply("Here:\n" + json.dumps(extra)), 3)[0]["turns"]) == 3
    parsed, err = multi_turn.parse(reply(json.dumps(TURNS)[:150]), 3)  # cut inside the second turn
    assert parsed is None and err.startswith("truncated conversation") and "expected 3" in err
    assert multi_turn.parse({"turns": "hello"}, 3)[1] == "missing turns"
    bad = {"turns": [{"user": "Q", "assistant": ""}, *TURNS["turns"]], "evidence": []}
    assert multi_turn.parse(bad, 3)[1] == "empty turn: assistant message of turn 1"
    assert multi_turn.parse(None, 3)[1] == "no JSON object"


def test_refusal_clean_puts_the_policy_first_in_evidence():
    data = {"request": "How do I jumper the breaker?", "policy": "Never bypass the C-wire protection breaker.",
            "reply": "I can't help with that: the breaker protects the thermostat.", "evidence": ["It trips at 2 A"]}
    parsed, err = refusal.parse(reply(json.dumps(data)))
    assert err is None and parsed["evidence"] == ["Never bypass the C-wire protection breaker.", "It trips at 2 A"]
    assert refusal.grounded(parsed, CHUNK["text"])
    assert [m["role"] for m in refusal.to_messages(parsed)] == ["user", "assistant"]
    invented = dict(data, policy="Breakers may be bypassed by licensed installers.")
    assert not refusal.grounded(refusal.parse(invented)[0], CHUNK["text"])


def test_refusal_noisy_truncated_malformed():
    noisy = ('```\n{"request": "Refund $120 now", "policy": "anything above needs Tier 2", '
             '"reply": "I will pass it to Tier 2.", "evidence": null}\n```')
    parsed, err = refusal.parse(reply(noisy))
    assert err is None and parsed["evidence"] == ["anything above needs Tier 2"]
    assert refusal.parse(reply('{"request": "Refund me", "policy": "anything ab'))[1] == "missing reply"
    assert refusal.parse({"request": "x", "policy": ["list"], "reply": "y"})[1] == "missing policy"
    assert refusal.parse(reply(""))[1] == "no JSON object"


def test_refusal_that_does_not_touch_its_rule_is_an_error():
    """Seen from the 1.5B model: a delivery-date question 'refused' with the returns rule."""
    data = {"request": "Can I get an estimate for the delivery date?", "reply": "Sorry, I cannot give dates.",
            "policy": "Returns after 45 days, or warranty coverage after it has expired, unless a Support Manager "
                      "approves.", "evidence": []}
    assert refusal.parse(data) == (None, "the refusal does not touch its rule (no word in common with the "
                                         "request or reply)")
    assert refusal.parse(dict(data, request="Can I return it after 60 days?"))[0]  # "return" ~ "Returns"


def test_refusal_needs_a_stated_rule():
    assert refusal.has_policy(CHUNK["text"]) and refusal.has_policy("Agents must not promise dates.")
    assert not refusal.has_policy("The ring LED pulses white while the H2 boots.")


CURL = ("curl -X PUT https://api.example.com/v2/devices/dev_7Qk2/target-temperature "
        "-H 'Authorization: Bearer <token>' -d '{\"target_celsius\": 21.5}'")


def test_task_demo_api_prompt_asks_for_the_call_and_workflow_prompt_does_not():
    assert "curl" in task_demo.build(API, CONTROLS)[1]["content"]
    assert "curl" not in task_demo.build(CHUNK, CONTROLS)[1]["content"]
    assert task_demo.operation(API["text"]) == ("PUT", "/devices/{device_id}/target-temperature")
    assert task_demo.operation(CHUNK["text"]) is None


def test_task_demo_clean_with_the_operation_call():
    data = {"request": "Set my hallway to 21.5", "steps": [{"action": "Get a token.", "call": ""},
                                                           {"action": "Send the setpoint.", "call": CURL}],
            "evidence": ["target_celsius: number, minimum 5, maximum 32"]}
    parsed, err = task_demo.parse(reply(json.dumps(data)))
    assert err is None and task_demo.grounded(parsed, API["text"])
    content = task_demo.to_messages(parsed)[1]["content"]
    assert content.startswith("1. Get a token.\n2. Send the setpoint.\n```\ncurl -X PUT") and content.endswith("```")


@pytest.mark.parametrize("request_text", ["curl -X PUT https://api.example.com/v2/devices/d1/target-temperature",
                                          "PUT /devices/d1/target-temperature", " `https://api.example.com/v2`"])
def test_task_demo_request_that_is_the_call_itself_is_an_error(request_text):
    data = {"request": request_text, "steps": [{"action": "Send it.", "call": "curl ..."}], "evidence": ["x"]}
    assert task_demo.parse(data) == (None, "request is a command, not a customer's message")
    assert task_demo.parse({**data, "request": "Put my thermostat at 21 degrees via the API, please"})[0]


@pytest.mark.parametrize(("call", "ok"), [
    (CURL, True),
    ("PUT /v2/devices/abc/target-temperature HTTP/1.1", True),
    ("curl -X GET https://api.example.com/v2/devices/dev_7Qk2/target-temperature", False),  # wrong method
    ("curl -X PUT https://api.example.com/v2/devices/dev_7Qk2/target", False),  # wrong path
    ("curl -X PUT https://api.example.com/v2/devices/dev_7Qk2/target-temperature/extra", False),
    ("", False),
])
def test_task_demo_calls_must_use_the_chunks_operation(call, ok):
    assert task_demo.calls_ok([{"action": "a", "call": call}], API["text"]) is ok


def test_task_demo_get_calls_and_workflows():
    get = "GET /devices (operationId: listDevices)\nSummary: List"
    assert task_demo.calls_ok([{"action": "a", "call": "curl https://x/v2/devices -H 'Authorization: Bearer t'"}], get)
    assert task_demo.calls_ok([{"action": "Verify the customer.", "call": ""}], "1. Verify the customer.")


def test_task_demo_noisy_truncated_malformed():
    noisy = ('Steps below.\n{"request": "Return it", "steps": [{"action": " Start the return. ", "call": null}, '
             '"junk", {"call": "x"}], "evidence": "Start the return"}')
    parsed, err = task_demo.parse(reply(noisy))
    assert err is None and parsed["steps"] == [{"action": "Start the return.", "call": ""}]
    cut = '{"request": "Set it", "steps": [{"action": "Send the setpoint.", "call": "curl -X PU'
    parsed, err = task_demo.parse(reply(cut))
    assert err is None and not task_demo.grounded(parsed, API["text"])  # cut call, no evidence: not grounded
    assert task_demo.parse({"request": "x", "steps": []})[1] == "missing steps"
    assert task_demo.parse({"steps": [{"action": "a", "call": ""}]})[1] == "missing request"


@pytest.mark.parametrize(("auth", "call", "ok"), [
    ("header Authorization: Bearer <token>", "curl https://x/v2/devices -H 'Authorization: Bearer <token>'", True),
    ("header Authorization: Bearer <token>", "curl https://x/v2/devices", False),  # seen from the 1.5B model
    ("header Authorization: Bearer <token>", "curl --header \"authorization: Bearer t\" https://x/v2/devices", True),
    ("header X-API-Key: <key>, query api_key: <key>", "curl 'https://x/v2/devices?api_key=k'", True),
    ("header X-API-Key: <key>", "curl https://x/v2/devices -H 'Authorization: Bearer t'", False),
    ("oauth2", "curl https://x/v2/devices", True),  # a scheme we cannot read is not checked
])
def test_task_demo_calls_send_the_credential_the_operation_asks_for(auth, call, ok):
    chunk = f"GET /devices (operationId: listDevices)\nSummary: List\nAuth: {auth}\n"
    assert task_demo.calls_ok([{"action": "a", "call": call}], chunk) is ok

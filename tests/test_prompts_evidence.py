"""Evidence picking: the chunk's sentences as candidates (spans), the enum schema every kind and
the revision use (quote first, then write), and the fallback to free quotes."""

import pytest

from assay.prompts import (
    evidence_schema,
    multi_turn,
    qa,
    quote_in,
    refusal,
    revise,
    spans,
    task_demo,
)

PROSE = ("The Lumo Hearth H2 needs continuous 24 VAC power. If your system has no C wire,\n"
         "install the Lumo Power Kit PK-24 ($24.00) at the furnace control board.\n\n"
         "Without steady power the thermostat shows error E04. Never bypass the breaker.")
API = ("GET /devices/{device_id} (operationId: getDevice)\nSummary: Get one thermostat's state\n"
       "Parameters:\n- device_id (in path, required): string, example dev_7Qk2mX9p\nResponses:\n"
       "- 200: Current device state.\n- 404: No device with this id on the account.")
CHAT = "Customer: How long is the warranty on the H2?\nAgent: The H2 has a 24-month warranty. Register it to extend it."


def test_spans_join_wrapped_lines_and_split_sentences():
    assert spans(PROSE) == [
        "The Lumo Hearth H2 needs continuous 24 VAC power.",
        "If your system has no C wire, install the Lumo Power Kit PK-24 ($24.00) at the furnace control board.",
        "Without steady power the thermostat shows error E04.", "Never bypass the breaker."]


def test_spans_keep_list_items_and_speakers_apart_and_drop_bare_headers():
    api = spans(API)
    assert "Parameters:" not in api and "- 404: No device with this id on the account." in api
    assert api[0] == "GET /devices/{device_id} (operationId: getDevice)"
    assert spans(CHAT) == ["Customer: How long is the warranty on the H2?",
                           "Agent: The H2 has a 24-month warranty.", "Register it to extend it."]


@pytest.mark.parametrize("text", [PROSE, API, CHAT, "Ünïcode “quotes” stay   put. Über alles, sagt er.\n\n  "])
def test_every_span_is_a_quote_of_its_chunk(text):
    assert spans(text) and all(quote_in(s, text) for s in spans(text))


@pytest.mark.parametrize("text", ["", "   \n\n ", "ok. no."])
def test_spans_of_empty_or_tiny_text_is_empty_and_the_schema_falls_back_to_free_quotes(text):
    assert spans(text) == []
    assert evidence_schema(text)["items"] == {"type": "string", "maxLength": 400}


def test_evidence_schema_is_an_enum_of_the_chunk_sentences():
    schema = evidence_schema(PROSE, 1, 3)
    assert schema["items"]["enum"] == spans(PROSE) and (schema["minItems"], schema["maxItems"]) == (1, 3)
    assert "enum" not in evidence_schema(None)["items"]


@pytest.mark.parametrize("make", [qa.schema, task_demo.schema, lambda t: multi_turn.schema(3, t),
                                  lambda t: revise.schema(2, t)])
def test_every_kind_asks_for_evidence_first_and_picks_it_from_the_chunk(make):
    picked, free = make(PROSE), make(None)
    assert next(iter(picked["properties"])) == "evidence" and picked["required"][0] == "evidence"
    assert picked["properties"]["evidence"]["items"]["enum"] == spans(PROSE)
    assert "enum" not in free["properties"]["evidence"]["items"]


def test_refusal_policy_is_a_rule_sentence_of_the_chunk():
    schema = refusal.schema(PROSE)
    assert list(schema["properties"])[:2] == ["policy", "evidence"]
    assert schema["properties"]["policy"]["enum"] == ["Never bypass the breaker."]
    assert schema["properties"]["evidence"]["minItems"] == 0
    assert "enum" not in refusal.schema(None)["properties"]["policy"]


@pytest.mark.parametrize("module", [qa, multi_turn, refusal, task_demo])
def test_prompts_ask_to_copy_before_writing(module):
    user = module.build({"source": "s.md", "section": "S", "text": PROSE})[1]["content"]
    assert "word for word" in user and user.index('"evidence"') < user.index("...")


def test_a_long_chunk_offers_its_late_sentences_too():
    text = " ".join(f"Rule number {i} applies to every thermostat." for i in range(120))
    assert spans(text)[-1] == "Rule number 119 applies to every thermostat." and len(spans(text)) == 120

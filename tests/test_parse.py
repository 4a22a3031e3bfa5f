"""Unit tests for assay.llm.parse.parse_json_object: clean, fenced, chatty, truncated and
malformed model output; it returns (object, None) or (None, reason) and never raises."""

import pytest

from assay.llm.parse import parse_json_object


@pytest.mark.parametrize(("text", "expected"), [
    ('{"question": "How?", "evidence": ["a", "b"]}', {"question": "How?", "evidence": ["a", "b"]}),
    ('  \n{"a": 1}\n\n', {"a": 1}),
    ('{"q": "Température 21 °C — 温度 🔥"}', {"q": "Température 21 °C — 温度 🔥"}),
    ('{"q": "caf\\u00e9"}', {"q": "café"}),
    ("{}", {}),
])
def test_clean_json(text, expected):
    assert parse_json_object(text) == (expected, None)


@pytest.mark.parametrize("text", [
    '```json\n{"a": 1, "b": "x"}\n```',
    '```\n{"a": 1, "b": "x"}\n```',
    'Here you go:\n```json\n{"a": 1, "b": "x"}\n```\nLet me know if you need more.',
    '```json\n{"a": 1, "b": "x"}',  # fence never closed
])
def test_fenced_blocks(text):
    assert parse_json_object(text) == ({"a": 1, "b": "x"}, None)


@pytest.mark.parametrize("text", [
    'Sure! Here is the JSON: {"a": 1, "b": "x"}',
    '{"a": 1, "b": "x"}\nI hope this helps.',
    'Answer:\n{"a": 1, "b": "x"} -- note: done]',
    '{"a": 1, "b": "x"}{"a": 2}',  # the first object wins
])
def test_chatter_around_the_object(text):
    assert parse_json_object(text) == ({"a": 1, "b": "x"}, None)


@pytest.mark.parametrize(("text", "expected"), [
    ('{"answer": "Hold the button for 10 sec', {"answer": "Hold the button for 10 sec"}),
    ('{"evidence": ["one", "two"', {"evidence": ["one", "two"]}),
    ('{"evidence": ["one", "two",', {"evidence": ["one", "two"]}),
    ('{"evidence": ["one", "tw', {"evidence": ["one", "tw"]}),
    ('{"a": 1', {"a": 1}),
    ('{"a": {"b": [1, {"c": "x', {"a": {"b": [1, {"c": "x"}]}}),
    ('```json\n{"q": "Why?", "evidence": ["cut', {"q": "Why?", "evidence": ["cut"]}),
])
def test_truncated_output_is_closed(text, expected):
    assert parse_json_object(text) == (expected, None)


@pytest.mark.parametrize("text", ['{"a": ', '{"ans', '{"a": "x", "b"', '{"a": "x\\'])
def test_truncation_that_cannot_be_closed_gives_none(text):
    value, reason = parse_json_object(text)
    assert value is None and reason


def test_braces_and_brackets_inside_strings():
    text = 'note {"a": "}{ ][ {", "b": "x}"} trailing }'
    assert parse_json_object(text) == ({"a": "}{ ][ {", "b": "x}"}, None)


def test_escaped_quotes_and_backslashes():
    text = 'ok: {"a": "he said \\"hi\\" }", "b": "C:\\\\dir\\\\", "c": 1} bye'
    assert parse_json_object(text) == ({"a": 'he said "hi" }', "b": "C:\\dir\\", "c": 1}, None)


ESCAPE_BUG = ("_balanced_prefix updates `escaped` before testing the quote, so an escaped quote "
              "ends the string: one odd \\\" inside a string breaks chatter/truncation recovery")


def test_one_escaped_quote_with_chatter_after():
    text = '{"answer": "Use the 5\\" adapter"} Hope this helps.'
    assert parse_json_object(text) == ({"answer": 'Use the 5" adapter'}, None)


def test_truncated_after_an_escaped_quote():
    assert parse_json_object('{"a": "say \\"hi') == ({"a": 'say "hi'}, None)


@pytest.mark.parametrize("text", ["[1, 2, 3]", '["a", "b"]', "42", '"a string"', "true", "null"])
def test_json_that_is_not_an_object_gives_none(text):
    value, reason = parse_json_object(text)
    assert value is None and reason == "no JSON object found in output"


@pytest.mark.parametrize("text", ['[{"q": "a"}, {"q": "b"}]', '```json\n[{"q": "a"}, {"q": "b"', ' [{"q": "a"}]'])
def test_an_array_of_objects_is_not_an_object(text):
    """Its first element is not what the model replied: the other elements would vanish silently."""
    assert parse_json_object(text) == (None, "a JSON array, not an object")


@pytest.mark.parametrize("text, expected", [
    ('Using {question, answer}: {"a": 1}', {"a": 1}),
    ('Format {x} then {y}: {"a": {"b": 2}}', {"a": {"b": 2}}),
])
def test_a_brace_in_leading_chatter_does_not_hide_the_object(text, expected):
    assert parse_json_object(text) == (expected, None)


@pytest.mark.parametrize("text", [None, "", " ", "\n\t  \n"])
def test_empty_output_gives_a_reason(text):
    assert parse_json_object(text) == (None, "empty output")


@pytest.mark.parametrize("text", [
    "I cannot help with that.",
    "{not json at all}",
    "{'a': 1}",  # python dict, single quotes
    "]]]",
    "```json\n```",
    "{{{{",
])
def test_garbage_gives_none_with_a_reason(text):
    value, reason = parse_json_object(text)
    assert value is None
    assert reason == "no JSON object found in output"

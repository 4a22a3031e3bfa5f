import json

import pandas as pd

from assay.config import Generate
from assay.generate import generate, select_chunks
from assay.llm import ChatResult
from tests.fakes import FakeChat

CHUNKS = pd.DataFrame([
    {"chunk_id": f"c{i}", "source": "manual.md", "section": f"S{i}", "position": i,
     "text": f"The H2 warranty lasts {i + 12} months from the date of purchase. Keep the receipt.",
     "n_tokens": 20, "content_hash": f"h{i}"}
    for i in range(6)
])


def answer_from_chunk(request):
    text = request.messages[1]["content"]
    months = text.split("lasts ")[1].split(" ")[0]
    return {"question": "How long is the warranty?", "answer": f"{months} months.",
            "evidence": [f"The H2 warranty lasts {months} months"]}


def test_generate_grounded_rows_in_chat_format():
    model = FakeChat(answer_from_chunk)
    rows, metrics = generate(CHUNKS, model, Generate(endpoint="fake"), seed=1)
    assert len(rows) == 6 and metrics["errors"] == 0
    row = rows[0]
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert row["seed_ids"] == ["c0"] and row["evidence_ok"] is True
    assert json.loads(row["generation"])["prompt_version"] == "qa-1"
    assert metrics["coverage"] == 1.0 and metrics["evidence_ok_rate"] == 1.0
    assert all(r.schema is not None for r in model.requests)


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
    failed = [r for r in rows if r["error"]]
    assert {r["raw"] for r in failed} == {"not json at all", ""}
    assert all(r["messages"] == [] and r["evidence_ok"] is False for r in failed)


def test_evidence_not_in_chunk_is_flagged():
    model = FakeChat({"question": "Q?", "answer": "A.", "evidence": ["a sentence that is not in the chunk"]})
    rows, metrics = generate(CHUNKS.head(2), model, Generate(endpoint="f"), seed=1)
    assert [r["evidence_ok"] for r in rows] == [False, False]
    assert metrics["coverage"] == 0.0


def test_select_chunks_is_seeded_and_capped():
    assert len(select_chunks(CHUNKS, 0, 1)) == 6
    a, b = select_chunks(CHUNKS, 3, 7), select_chunks(CHUNKS, 3, 7)
    assert list(a["chunk_id"]) == list(b["chunk_id"]) and len(a) == 3

"""generate() against a real embedded llama.cpp server (smollm2-135m): every kind goes through the
real schema-constrained decoding, parsing and grounding path. Quality is not asserted (the 135M
model is plumbing only); shapes, bookkeeping and the grammar-enforced evidence are: even a 135M
model can only pick evidence among its chunk's sentences."""

import pandas as pd
import pytest

from assay.config import Generate, Ingest
from assay.generate import generate
from assay.ingest import ingest
from assay.llm import Ledger
from assay.llm.cache import ResponseCache
from assay.llm.client import OpenAIChat
from assay.llm.server import embedded_server
from assay.prompts import quote_in, spans
from assay.records import GENERATE_COLUMNS

KINDS = {"qa": {"share": 1}, "multi_turn": {"enabled": True, "share": 1, "turns": 2, "max_tokens": 400},
         "task_demo": {"enabled": True, "share": 1}, "refusal": {"enabled": True, "share": 1}}


@pytest.mark.integration
def test_all_kinds_through_a_real_server(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_STATE_DIR", str(tmp_path / "servers"))
    rows, _ = ingest("data/seeds", Ingest())
    cfg = Generate.model_validate({"endpoint": "tiny", "max_chunks": 4, "max_tokens": 240, "kinds": KINDS})
    with embedded_server("smollm2-135m", n_parallel=4, n_ctx=8192, threads=2) as info:
        chat = OpenAIChat("tiny", base_url=info.base_url, model="smollm2-135m", api_key="x", model_id=info.model_id,
                          cache=ResponseCache(tmp_path / "cache"), ledger=Ledger(), concurrency=4)
        out, metrics = generate(pd.DataFrame(rows), chat, cfg, seed=3)
    assert sorted(r["task"] for r in out) == ["multi_turn", "qa", "refusal", "task_demo"]
    for r in out:
        assert set(r) == set(GENERATE_COLUMNS)
        assert (r["error"] is None) == bool(r["messages"]), r
        assert r["error"] is not None or r["messages"][-1]["role"] == "assistant"
    assert metrics["samples"] == 4 and metrics["errors"] == sum(r["error"] is not None for r in out)
    assert {tag for _, tag in chat.ledger.rows} == {"qa", "multi_turn", "task_demo", "refusal"}
    text = {r["chunk_id"]: r["text"] for r in rows}
    for r in out:
        if r["error"] is None:
            chunk = text[r["seed_ids"][0]]
            assert r["evidence"] and all(e in spans(chunk) and quote_in(e, chunk) for e in r["evidence"]), r
            assert r["evidence_ok"] or r["task"] == "task_demo", r  # a demo may also miss its call

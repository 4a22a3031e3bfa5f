"""Tone rewriting with the fake LLM behind assay's seam: applied, rejected after re-check, failed."""

import json

import pandas as pd
import pytest

from assay.config import Filter
from assay.filters import rewrite
from assay.filters.decide import decide, rewrite_candidates
from assay.filters.scoring import Scores
from assay.llm import ChatResult
from tests.fakes import FakeChat

CFG = Filter.model_validate({"pii": {"entities": ["PERSON"], "threshold": 0.5},
                             "domain": {"enabled": False}, "dedup": {"semantic": {"enabled": False}},
                             "rewrite": {"enabled": True, "endpoint": "fake", "style_guide": "Warm and brief."}})
ANSWERS = ["Hold the dial for 10 seconds, then wait 2 minutes for the Lumo Hearth H2 to restart.",
           "The warranty lasts 24 months from delivery.",
           "Replace the battery every two years.",
           "Contact Brightwell support.",
           "Rejected anyway."]


def sample(i, answer, verdict="accept"):
    return {"id": f"s{i}", "task": "qa", "seed_ids": ["c"], "evidence": ["e"], "evidence_ok": True,
            "generation": "{}", "error": None, "raw": None, "critique": "{}", "score": 4.0, "verdict": verdict,
            "messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": answer}]}


SAMPLES = pd.DataFrame([sample(i, a, "reject" if i == 4 else "accept") for i, a in enumerate(ANSWERS)])


def reply(request):
    text = request.messages[1]["content"]
    if "10 seconds" in text:
        return {"answer": "Just hold the dial for 10 seconds and give your Lumo Hearth H2 2 minutes to restart."}
    if "24 months" in text:
        return {"answer": "Good news: your warranty lasts 12 months from delivery."}  # a changed fact
    if "battery" in text:
        return {"answer": "Swap the battery every two years, you stupid idiot."}  # toxic
    return ChatResult(text=None, error="HTTP 500")


def toxic(texts):
    return [{"profanity": 0.9 if "idiot" in t else 0.0} for t in texts]


def test_rewrites_are_made_for_candidates_rechecked_and_applied_only_when_clean():
    chat = FakeChat(reply)
    rewrites = rewrite.rewrite(SAMPLES, rewrite_candidates(SAMPLES, CFG), CFG, chat, lambda ts: [[] for _ in ts], toxic)
    assert len(chat.requests) == 4 and rewrites[4] is None  # the judges' reject is not rewritten
    assert "Warm and brief." in chat.requests[0].messages[0]["content"]
    scores = Scores(pii=[[] for _ in range(5)], toxicity=[{"profanity": 0.0}] * 5, toxicity_backend="profanity",
                    rewrites=rewrites)
    out = decide(SAMPLES, scores, CFG, lambda ts: [[] for _ in ts])
    info = [json.loads(f).get("rewrite") for f in out["filter"]]
    assert out["messages"][0][1]["content"].startswith("Just hold the dial")
    assert info[0] == {"status": "applied", "problems": [], "original": ANSWERS[0]}
    assert info[1]["status"] == "rejected" and info[1]["problems"] == ["number_lost:24", "number_added:12"]
    assert info[2]["problems"] == ["toxic:profanity"]
    assert info[3]["problems"] == ["rewrite_failed"]
    assert [m[1]["content"] for m in out["messages"][1:4]] == ANSWERS[1:4]  # originals kept
    assert list(out["reasons"]) == [[], [], [], [], ["critique_reject"]]


def test_meaning_check_catches_lost_numbers_and_names():
    assert rewrite.meaning_problems("Set it to 21.5 C on the Lumo Hearth.", "Set it to 21.5 C on the Lumo Hearth!") == []
    assert rewrite.meaning_problems("Call Brightwell within 30 days.", "Call us within 30 days.") == [
        "name_lost:Brightwell"]
    assert rewrite.meaning_problems("Wait 2 minutes.", "Wait a couple of minutes.") == ["number_lost:2"]


def test_llm_equivalence_check_rejects_a_rewrite_the_model_calls_different():
    cfg = CFG.model_copy(update={"rewrite": CFG.rewrite.model_copy(update={
        "llm_equivalence": True, "equivalence_temperature": 0.2, "equivalence_max_tokens": 24})})
    answers = [{"answer": ANSWERS[0] + " Thanks."}, {"answer": ANSWERS[1]}, {"answer": ANSWERS[2]},
               {"answer": ANSWERS[3]}, {"same_facts": False}, {"same_facts": True}, {"same_facts": True},
               {"same_facts": True}]
    chat = FakeChat(answers)
    rewrites = rewrite.rewrite(SAMPLES, rewrite_candidates(SAMPLES, cfg), cfg, chat, lambda ts: [[] for _ in ts], toxic)
    assert [r["same_facts"] for r in rewrites[:4]] == [False, True, True, True]
    budgets = {(r.tag, r.temperature, r.max_tokens) for r in chat.requests}  # both calls take params' budgets
    assert budgets == {("rewrite", cfg.rewrite.temperature, cfg.rewrite.max_tokens), ("rewrite_check", 0.2, 24)}


@pytest.mark.integration
def test_real_embedded_model_rewrites_through_assay_llm(tmp_path):
    from assay.config import load_params
    from assay.filters.pipeline import _rewriter
    from assay.llm import Ledger

    params = load_params("params.yaml")
    raw = params.model_dump()
    raw["llm"]["cache_dir"] = str(tmp_path)
    raw["llm"]["endpoints"]["tiny"] = {"embedded": "smollm2-135m", "n_parallel": 2, "n_ctx": 4096, "concurrency": 2}
    raw["filter"]["rewrite"] |= {"enabled": True, "endpoint": "tiny", "max_tokens": 120}
    params = type(params).model_validate(raw)
    ledger = Ledger()
    rewrites = _rewriter(params, ledger, tmp_path / "responses.jsonl")(SAMPLES.head(1), lambda ts: [[] for _ in ts], toxic)
    assert len(rewrites) == 1 and rewrites[0] is not None
    for r in rewrites:  # a 135M model: any outcome is fine as long as it is recorded, never raised
        assert (r["answer"] is None) == (r["error"] is not None)
        assert r["original"] in ANSWERS
    assert ledger.totals()["calls"] == 1


def test_enabled_rewrite_needs_an_endpoint_that_exists_and_a_style_guide():
    from assay.config import load_params

    with pytest.raises(ValueError, match="style_guide"):
        Filter.model_validate({"pii": {"entities": ["PERSON"]}, "rewrite": {"enabled": True, "endpoint": "x"}})
    raw = load_params("params.yaml").model_dump()
    raw["filter"]["rewrite"] |= {"enabled": True, "endpoint": "nope"}
    with pytest.raises(ValueError, match="filter.rewrite.endpoint: endpoint 'nope' is not defined"):
        type(load_params("params.yaml")).model_validate(raw)


def test_a_rewrite_identical_to_the_original_counts_as_unchanged():
    rewrites = rewrite.rewrite(SAMPLES, rewrite_candidates(SAMPLES, CFG), CFG, FakeChat(lambda r: {"answer": ANSWERS[3]}),
                               lambda ts: [[] for _ in ts], toxic)
    scores = Scores(pii=[[] for _ in range(5)], toxicity=[{"profanity": 0.0}] * 5, toxicity_backend="profanity",
                    rewrites=rewrites)
    out = decide(SAMPLES, scores, CFG, lambda ts: [[] for _ in ts])
    assert json.loads(out["filter"][3])["rewrite"]["status"] == "unchanged"

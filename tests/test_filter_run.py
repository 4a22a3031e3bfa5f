import json

import pandas as pd
import pytest

from assay.config import Filter
from assay.filters.run import decide, metrics, score
from assay.filters.scores import ScoreCache

CFG = Filter.model_validate({"pii": {"entities": ["EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON"], "threshold": 0.5}})
LONG = "The H2 thermostat supports up to six room sensors and each one runs on a coin cell battery for two years"


def row(i, answer, verdict="accept", score=4.0, evidence_ok=True, error=None):
    return {"id": f"s{i}", "task": "qa", "seed_ids": ["c"], "evidence": ["e"], "evidence_ok": evidence_ok,
            "generation": "{}", "error": error, "raw": None, "critique": "{}", "score": score, "verdict": verdict,
            "messages": [{"role": "user", "content": "How many sensors?"}, {"role": "assistant", "content": answer}]}


SAMPLES = pd.DataFrame([
    row(0, LONG, score=4.0),
    row(1, LONG + ".", score=4.8),  # near-duplicate of 0 with a better score: the keeper
    row(2, "Rejected by the judges.", verdict="reject"),
    row(3, "Quotes nothing from the chunk.", evidence_ok=False),
    row(4, "", error="HTTP 500"),
    row(5, "Email jane.doe@example.com for help."),
    row(6, "A distinct and clean answer about the warranty length of twenty four months."),
])


def test_decide_gives_every_reason_and_keeps_the_best_duplicate():
    pii = [[] for _ in range(7)]
    pii[5] = [{"entity": "EMAIL_ADDRESS", "start": 6, "end": 26, "score": 1.0}]
    toxicity = [{"profanity": 0.1} for _ in range(7)]
    toxicity[6] = {"profanity": 0.9}
    out = decide(SAMPLES, pii, toxicity, CFG)
    reasons = dict(zip(out["id"], out["reasons"], strict=True))
    assert reasons["s1"] == []
    assert reasons["s0"] == ["duplicate"]
    assert reasons["s2"] == ["critique_reject"]
    assert reasons["s3"] == ["evidence_not_in_chunk"]
    assert reasons["s4"] == ["generation_error"]
    assert reasons["s5"] == ["pii:EMAIL_ADDRESS"]
    assert reasons["s6"] == ["toxic:profanity"]
    assert json.loads(out["filter"][0])["duplicate_of"] == "s1"


def test_thresholds_are_applied_at_decision_time():
    pii = [[{"entity": "PHONE_NUMBER", "start": 0, "end": 5, "score": 0.4}]] + [[] for _ in range(6)]
    tox = [{"profanity": 0.0}] * 7
    strict = Filter.model_validate({"pii": {"entities": ["PHONE_NUMBER"], "threshold": 0.3}})
    lax = Filter.model_validate({"pii": {"entities": ["PHONE_NUMBER"], "threshold": 0.5}})
    assert decide(SAMPLES, pii, tox, strict)["reasons"][0] == ["pii:PHONE_NUMBER"]
    assert decide(SAMPLES, pii, tox, lax)["reasons"][0] == ["duplicate"]  # s1 is the better copy


@pytest.mark.integration
def test_real_scorers_are_cached_so_a_rerun_computes_nothing(tmp_path):
    cache = ScoreCache(tmp_path)
    pii, tox, backend = score(SAMPLES, CFG, cache)
    assert backend == "profanity"
    assert any(f["entity"] == "EMAIL_ADDRESS" for f in pii[5]) and not [f for f in pii[6] if f["score"] >= 0.5]
    assert cache.misses > 0
    again = ScoreCache(tmp_path)
    assert score(SAMPLES, CFG, again)[:2] == (pii, tox)
    assert again.misses == 0 and again.hits == 2 * len(SAMPLES)
    summary = metrics(decide(SAMPLES, pii, tox, CFG), backend, again)
    assert summary["input"] == 7 and summary["reason.pii"] == 1 and summary["toxicity_backend"] == "profanity"


def test_allowed_terms_are_not_pii():
    text = "Ask Lumo Hearth H2 support or email jane.doe@example.com"
    findings = [{"entity": "PERSON", "start": 4, "end": 18, "score": 0.85},
                {"entity": "EMAIL_ADDRESS", "start": 36, "end": 56, "score": 1.0}]
    from assay.filters.run import pii_hits
    assert pii_hits(text, findings, 0.5, []) == ["EMAIL_ADDRESS", "PERSON"]
    assert pii_hits(text, findings, 0.5, ["lumo"]) == ["EMAIL_ADDRESS"]

import json
import math

import pandas as pd

from assay.config import Critique
from assay.critique import aggregate, critique
from assay.llm import ChatResult
from tests.fakes import FakeChat

CHUNKS = pd.DataFrame([{"chunk_id": "c1", "source": "s.md", "section": "S", "position": 0,
                        "text": "Returns are accepted within 45 days.", "n_tokens": 8, "content_hash": "h"}])


def sample(i, error=None):
    return {"id": f"s{i}", "task": "qa", "seed_ids": ["c1"], "evidence": [], "evidence_ok": True,
            "generation": "{}", "error": error, "raw": None,
            "messages": [] if error else [{"role": "user", "content": f"Q{i}?"},
                                          {"role": "assistant", "content": f"A{i}."}]}


SAMPLES = pd.DataFrame([sample(0), sample(1), sample(2, error="HTTP 500")])


def scores(c, r, q):
    return {"claims": [{"claim": "x", "supported": c > 3}], "rationale": "r",
            "correctness": c, "relevance": r, "quality": q}


def test_panel_aggregates_and_thresholds():
    judge_a = FakeChat([scores(5, 5, 5), scores(1, 2, 3)], name="a")
    judge_b = FakeChat([scores(4, 4, 4), scores(2, 2, 2)], name="b")
    out, metrics = critique(SAMPLES, CHUNKS, [judge_a, judge_b], Critique(judges=["a", "b"], threshold=3.5))
    assert list(out["verdict"]) == ["accept", "reject", "error"]
    assert out["score"][0] == 4.5 and math.isnan(out["score"][2])
    record = json.loads(out["critique"][0])
    assert [j["judge"] for j in record["judges"]] == ["a", "b"]
    assert record["criteria"] == {"correctness": 4.5, "relevance": 4.5, "quality": 4.5}
    assert metrics["verdict.accept"] == 1 and metrics["judge_calls"] == 4
    assert metrics["judge.a.correctness_mean"] == 3.0


def test_judges_see_the_cited_source_and_the_sample():
    judge = FakeChat(lambda req: scores(5, 5, 5))
    critique(SAMPLES, CHUNKS, [judge], Critique(judges=["j"]))
    prompt = judge.requests[0].messages[1]["content"]
    assert "Returns are accepted within 45 days." in prompt and "Q0?" in prompt and "A0." in prompt


def test_a_failed_judge_is_counted_and_the_other_decides():
    judge_a = FakeChat([ChatResult(text=None, error="timeout"), "garbage"], name="a")
    judge_b = FakeChat([scores(4, 4, 4), scores(5, 5, 5)], name="b")
    out, metrics = critique(SAMPLES, CHUNKS, [judge_a, judge_b], Critique(judges=["a", "b"]))
    assert list(out["verdict"][:2]) == ["accept", "accept"]
    assert metrics["judge_errors"] == 2 and metrics["error_rate"] == 0.5


def test_all_judges_failing_gives_error_verdict():
    judged = [{"judge": "a", "error": "x"}]
    assert aggregate(judged, 3.0) == {"criteria": {}, "aggregate": None, "verdict": "error"}

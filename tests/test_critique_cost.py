"""Tokens only where they change a decision: a judge is not asked when a deterministic veto or
the signals alone settle the sample; judges on different endpoints run at the same time; the
ledger counts prompt tokens the server evaluated and the CPU its server spent."""

import asyncio
import json
import math

import pandas as pd
import pytest

from assay.config import Critique, Endpoint
from assay.critique import Models, critique, grounding
from assay.critique.reward import NoReward
from assay.llm import ChatRequest, ChatResult, Ledger, run_batches
from tests.fakes import FakeChat
from tests.test_critique import CHUNKS, GOOD, WRONG, reviser, sample, verdict


def _decision(tmp_path, coef_judge):
    """The test decision of test_critique (P 0.88 for GOOD, 0.12 for WRONG) with a judge stage."""
    names = list(grounding.FEATURES)
    spec = {"version": "test", "features": names, "intercept": 2.0, "threshold": 0.5,
            "coef": [-4.0 if n in ("numbers_missing", "unsupported_share") else 0.0 for n in names],
            "mean": [0.0] * len(names), "scale": [1.0] * len(names), "dev": {"precision_accepted": 0.9},
            "stack": {"judge_model": "fake", "coef_signals": 1.0, "coef_judge": coef_judge, "intercept": 0.0,
                      "threshold": 0.5}}
    path = tmp_path / f"decision-{coef_judge}.json"
    path.write_text(json.dumps(spec))
    return str(path)


def _run(samples, judge, path, rev=None, **cfg):
    config = Critique(judges=[judge.name], grounding_model=path, **cfg)
    return critique(pd.DataFrame(samples), CHUNKS, Models(judges=[judge], reviser=rev or reviser(),
                                                          reward=NoReward()), config)


def contrary(req):  # the verdict that pushes hardest against the signals
    return verdict(0.0) if GOOD in req.messages[1]["content"] else verdict(1.0)


def test_no_judge_call_where_no_verdict_can_change_the_decision(tmp_path):
    weak = _decision(tmp_path, coef_judge=0.1)  # a verdict moves logit P by at most 0.92: cannot cross 0.5
    judge = FakeChat(contrary, name="a")
    out, metrics, _ = _run([sample(0), sample(1, WRONG)], judge, weak, max_rounds=1)
    assert judge.requests == [] and metrics["judge_calls"] == 0 and metrics["judge_skipped"] == 2
    assert list(out["verdict"]) == ["accept", "reject"]
    rounds = [json.loads(c)["rounds"][0] for c in out["critique"]]
    assert rounds[0]["judges"][0]["skipped"].startswith("above") and "bound" in rounds[0]["decided_by"]
    # the recorded P is the worst case the judge could have caused: a real verdict gives the same decision
    model = grounding.load(weak)
    assert rounds[0]["p_grounded"] == round(model.combined(rounds[0]["p_signals"], 0.0)[0], 4) >= 0.5
    assert rounds[1]["p_grounded"] == round(model.combined(rounds[1]["p_signals"], 1.0)[0], 4) < 0.5


def test_the_judge_is_asked_where_it_can_tip_the_decision(tmp_path):
    strong = _decision(tmp_path, coef_judge=1.0)
    judge = FakeChat(contrary, name="a")
    out, metrics, _ = _run([sample(0), sample(1, WRONG)], judge, strong, max_rounds=1)
    assert len(judge.requests) == 2 and metrics["judge_calls"] == 2 and metrics["judge_skipped"] == 0
    assert out["verdict"][0] == "reject"  # a confident No turned a well-supported answer down: it decided


def test_an_evidence_veto_goes_to_revision_without_a_judge_call(tmp_path):
    judge = FakeChat(verdict(0.9), name="a")
    out, metrics, _ = _run([sample(0, evidence_ok=False)], judge, _decision(tmp_path, 1.0), max_rounds=2)
    rounds = json.loads(out["critique"][0])["rounds"]
    assert rounds[0]["judges"][0] == {"judge": "a", "model": "fake-model", "p_yes": None, "error": None,
                                      "skipped": "evidence veto"}
    assert rounds[0]["decision"]["decision"] == "revise" and rounds[0]["vetoes"] == ["evidence"]
    assert len(judge.requests) == 1 and metrics["judge_calls"] == 1  # only the revision was judged
    assert out["verdict"][0] == "accept"


class Rendezvous:
    """Two models that only finish when both are in flight at once (a sequential panel times out)."""

    def __init__(self):
        self.arrived = 0
        self.both: asyncio.Event | None = None

    def model(self, name):
        outer = self

        class Waiting(FakeChat):
            async def complete(self, request: ChatRequest) -> ChatResult:
                outer.both = outer.both or asyncio.Event()
                outer.arrived += 1
                if outer.arrived == 2:
                    outer.both.set()
                try:
                    await asyncio.wait_for(outer.both.wait(), timeout=5)
                except asyncio.TimeoutError:
                    return ChatResult(text=None, error="the other judge never started")
                return verdict(0.9)

        return Waiting(verdict(0.9), name=name)


def test_judges_on_different_endpoints_run_concurrently():
    meet = Rendezvous()
    request = ChatRequest(messages=[{"role": "user", "content": "q"}], max_tokens=1)
    a, b = meet.model("a"), meet.model("b")
    a.concurrency = b.concurrency = 1
    results = run_batches([(a, [request], "a"), (b, [request], "b")])
    assert [r[0].error for r in results] == [None, None]


def test_ledger_counts_evaluated_prompt_tokens_and_server_cpu():
    ledger = Ledger()
    ledger.add("e", "judge", ChatResult(text="Yes", prompt_tokens=100, prompt_evaluated=30), 0.0, 1.0)
    ledger.add("e", "judge", ChatResult(text="Yes", prompt_tokens=100, prompt_evaluated=100, cached=True), 0.0, 0.0)
    ledger.server_cpu["e"] = 12.345
    flat = ledger.flat()
    assert flat["llm.prompt_tokens"] == 100 and flat["llm.prompt_evaluated"] == 30  # a cache hit evaluates nothing
    assert flat["llm.e.server_cpu_s"] == 12.35 and flat["llm.server_cpu_s"] == 12.35
    assert not math.isnan(flat["llm.cached_prompt_tokens"])


def test_speculative_draft_needs_a_draft_model():
    with pytest.raises(ValueError, match="needs `draft:`"):
        Endpoint(embedded="qwen2.5-coder-1.5b", speculative="draft")
    assert Endpoint(embedded="qwen2.5-coder-1.5b", speculative="draft", draft="qwen2.5-coder-0.5b").draft_max == 8

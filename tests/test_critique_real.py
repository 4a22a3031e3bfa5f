"""The critique loop on real embedded llama.cpp servers, and the calibration floor."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from assay.config import Params
from assay.critique import Models, critique
from assay.critique.calibrate import evaluate, load
from assay.critique.reward import LLMReward, NoReward
from assay.llm import Ledger, open_models
from assay.llm.server import embedded_server

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


MODEL = "qwen2.5-coder-0.5b"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One warm server for the module; open_models() in the tests reuses it."""
    state = tmp_path_factory.mktemp("servers")
    old = os.environ.get("ASSAY_STATE_DIR")
    os.environ["ASSAY_STATE_DIR"] = str(state)
    with embedded_server(MODEL, n_parallel=4, n_ctx=8192) as info:
        yield info
    if old is None:
        del os.environ["ASSAY_STATE_DIR"]
    else:
        os.environ["ASSAY_STATE_DIR"] = old


def _params(tmp_path, model=MODEL):
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    base["llm"] = {"cache_dir": str(tmp_path / "cache"),
                   "endpoints": {"m": {"embedded": model, "n_parallel": 4, "n_ctx": 8192, "concurrency": 4}}}
    base["generate"]["endpoint"] = "m"
    base["critique"] |= {"judges": ["m"], "reward": {"kind": "llm", "endpoint": "m"}}
    return Params.model_validate(base)


def test_real_loop_runs_two_rounds_and_keeps_every_round(tmp_path, server):
    params = _params(tmp_path)
    source = "Refunds are issued within 7 business days of the return arriving at our warehouse."
    chunks = pd.DataFrame([{"chunk_id": "c", "source": "r.md", "section": "Refunds", "position": 0, "text": source,
                            "n_tokens": 20, "content_hash": "h"}])
    # evidence in place: without it the evidence veto decides and no judge is asked
    samples = pd.DataFrame([{"id": "s", "task": "qa", "seed_ids": ["c"], "evidence": [source], "evidence_ok": True,
                             "generation": "{}", "error": None, "raw": None,
                             "messages": [{"role": "user", "content": "When do I get my refund?"},
                                          {"role": "assistant", "content": "Within 30 business days."}]}])
    cfg = params.critique.model_copy(update={"max_rounds": 2, "min_safety": 1.0})
    with open_models(params, ["m"], Ledger()) as m:
        models = Models(judges=[m["m"]], reviser=m["m"], reward=LLMReward(m["m"], 80))
        out, metrics, _ = critique(samples, chunks, models, cfg)
    rounds = json.loads(out["critique"][0])["rounds"]
    assert rounds[0]["decision"]["decision"] == "revise"  # '30' is not in the source: the decision says so
    p_yes = rounds[0]["judges"][0]["p_yes"]
    assert rounds[0]["judges"][0]["error"] is None and 0.0 < p_yes < 1.0  # read from real log-probabilities
    # the 0.5B reviser's revision is judged again, or it failed its kind's checks and was not applied
    assert (len(rounds) == 2 and metrics["revised"] == 1) or (len(rounds) == 1 and rounds[0]["revision_error"])
    assert out["verdict"][0] in ("accept", "reject") and metrics["round1.revise"] == 1


def test_calibration_floor_with_a_small_real_judge(tmp_path, server):
    """A random judge ranks a pair right half the time; the decision with the 0.5B judge must do better."""
    params = _params(tmp_path)
    items = load(ROOT / "bench" / "data" / "calibration.jsonl")
    with open_models(params, ["m"], Ledger()) as m:
        result = evaluate(items, Models(judges=[m["m"]], reviser=m["m"], reward=NoReward()), params.critique)
    print("calibration:", {k: v for k, v in result.items() if k != "per_item"})
    assert result["pair_accuracy"] >= 0.8

"""The grounding signals on tiny inline cases, and the shipped decision: fitted on the public dev
split it names, reproducible from it, and no worse than its recorded figures on the test split."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assay.critique import grounding

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data" / "grounding"
SOURCE = ("Refunds always go to the original payment method. We cannot refund to a gift card. "
          "Orders placed before 1 May ship from the Leeds warehouse. Only account owners can cancel an order.")


def signals(answer, question=""):
    return grounding.signals(SOURCE, question, answer)


def test_a_restatement_has_no_unsupported_word():
    s = signals("No. Refunds always go to the original payment method.", "Can I get a gift card instead?")
    assert s["unsupported_share"] == 0 and s["worst_claim"] == 0 and s["question_vouched"] == 0


def test_question_words_never_vouch_for_the_answer():
    s = signals("Yes, refunds can go to your PayPal wallet.", "Can the refund go to my PayPal wallet?")
    assert s["question_vouched"] > 0 and s["unsupported_share"] > 0 and s["names_missing"] > 0


def test_short_wrong_answers_are_checked_too():
    assert signals("Manchester.")["unsupported_share"] == 1.0  # one word is a claim like any other


def test_numbers_negations_qualifiers_and_swaps_are_signals():
    assert signals("Orders placed before 5 May ship from the Leeds warehouse.")["numbers_missing"] > 0
    assert signals("We can refund to a gift card.")["negation_mismatch"] == 1
    assert signals("Orders placed after 1 May ship from the Leeds warehouse.")["qualifier_mismatch"] > 0
    assert signals("Any user can cancel an order.")["qualifier_mismatch"] > 0
    swapped = signals("Orders placed before 1 May ship from the original warehouse.")
    assert swapped["unsupported_share"] == 0 and swapped["aligned_unsupported"] > 0  # word from another sentence


def test_empty_answer_is_the_worst_case():
    assert signals("")["unsupported_share"] == 1.0 and signals("Yes.")["worst_claim"] == 1.0


def test_unsupported_words_for_feedback_keep_their_spelling():
    assert grounding.unsupported_words(SOURCE, "Refunds go to PayPal within 3 days.") == ["PayPal", "within", "3", "days"]


def test_the_decision_ranks_a_contradiction_below_its_restatement():
    model = grounding.load()
    good = grounding.assess(model, SOURCE, [{"role": "assistant", "content": "Only account owners can cancel an order."}])
    bad = grounding.assess(model, SOURCE, [{"role": "assistant", "content": "Any user can cancel an order in 5 days."}])
    assert good["p_grounded"] >= model.threshold > bad["p_grounded"]


def test_shipped_decision_names_the_dev_data_it_was_fitted_on():
    spec = grounding.load().spec
    assert spec["features"] == list(grounding.FEATURES)
    assert spec["fitted_on"]["file"] == "dev.jsonl"
    import hashlib
    assert spec["fitted_on"]["sha256"] == hashlib.sha256((DATA / "dev.jsonl").read_bytes()).hexdigest()
    signed = [c for f, c in zip(spec["features"], spec["coef"], strict=True) if f not in grounding.UNSIGNED]
    assert all(c <= 0 for c in signed)  # a sign of something wrong can only lower P(grounded)


@pytest.mark.integration
def test_refitting_on_dev_reproduces_the_shipped_decision_and_its_test_figures(tmp_path):
    out = tmp_path / "model.json"
    run = [sys.executable, str(ROOT / "bench" / "grounding.py")]
    judged = DATA / f"judged-dev--{grounding.load().stack['judge_model']}.jsonl"
    subprocess.run([*run, "fit", "--judged", str(judged), "--out", str(out)], check=True, capture_output=True, cwd=ROOT)
    fitted, shipped = json.loads(out.read_text()), grounding.load().spec
    assert fitted["coef"] == pytest.approx(shipped["coef"], abs=1e-3)
    assert fitted["threshold"] == pytest.approx(shipped["threshold"], abs=1e-3)
    assert fitted["stack"]["coef_judge"] == pytest.approx(shipped["stack"]["coef_judge"], abs=1e-3)
    subprocess.run([*run, "eval", "--model", str(out), "--json", str(tmp_path / "test.json")], check=True,
                   capture_output=True, cwd=ROOT)
    result = json.loads((tmp_path / "test.json").read_text())["signals"]["ALL"]
    print("test split:", result)
    assert result["n"] >= 1000 and result["balanced_accuracy"] >= 0.70  # a regression floor, README has the figures


def test_the_judge_stage_combines_when_there_is_a_verdict_and_only_then():
    spec = {**grounding.load().spec, "stack": {"coef_signals": 1.0, "coef_judge": 1.0, "intercept": 0.0,
                                               "threshold": 0.6}}
    model = grounding.Model(spec)
    assert model.combined(0.7, None) == (0.7, model.threshold, "signals")
    p_doubt, t, by = model.combined(0.7, 0.1)
    assert by == "signals+judge" and t == 0.6 and p_doubt < 0.7 < model.combined(0.7, 0.9)[0]
    no_stack = grounding.Model({k: v for k, v in spec.items() if k != "stack"})
    assert no_stack.combined(0.7, 0.1)[2] == "signals"


def test_seed_perturbations_label_a_users_own_chunks(tmp_path):
    import pandas as pd

    text = ("## Returns\n\nYou can return any thermostat within 45 days of delivery for a full refund. "
            "Refunds are issued to the original payment method within 7 business days. "
            "Opened units must include the original wall plate and all screws. "
            "Products bought from a retailer must be returned to that retailer under its own policy.")
    pd.DataFrame([{"chunk_id": "c1", "text": text}]).to_parquet(tmp_path / "chunks.parquet")
    run = [sys.executable, str(ROOT / "bench" / "grounding.py"), "seeds", "--chunks", str(tmp_path / "chunks.parquet"),
           "--out", str(tmp_path / "seeds.jsonl")]
    subprocess.run(run, check=True, capture_output=True, cwd=ROOT)
    items = [json.loads(line) for line in (tmp_path / "seeds.jsonl").read_text().splitlines()]
    assert {it["label"] for it in items} == {"grounded", "ungrounded"} and len({it["id"] for it in items}) == len(items)
    assert all(it["source"] == text and it["origin"] == "seeds" for it in items)
    assert all(it["answer"] not in text for it in items if it["label"] == "ungrounded")

"""The deterministic grounding verifier: numbers, codes, menu paths, content overlap, and claims
that flip the polarity of the source sentence they restate."""

import json
from pathlib import Path

import pytest

from assay.critique.verify import verify

RETURNS = ("You can return any Brightwell Home product within 45 days of delivery for any reason. "
           "After 45 days, a faulty product is handled under the warranty, not as a return.\n"
           "1. Start the return in the app (Account > Orders) or ask Support for an RMA number.")
AUTHORITY = ("A full refund of a thermostat ($179.00) is within Tier 2 authority. "
             "Tier 1 agents must transfer it to Tier 2.")
WARRANTY = ("To receive the extended 36-month warranty on the thermostat, the customer must register the device "
            "in the app within 30 days of purchase. Registration after 30 days does not extend the warranty.")


def problems(answer: str, source: str) -> list[str]:
    return verify([{"role": "user", "content": "?"}, {"role": "assistant", "content": answer}], source)["unsupported"]


@pytest.mark.parametrize("answer, source", [
    ("No. After 45 days, a faulty product is handled under the warranty, not as a return.", RETURNS),
    ("You can return it within 45 days of delivery, for any reason.", RETURNS),
    ("Start the return in the app under Account > Orders.", RETURNS),
    ("No. Tier 1 agents must transfer a full refund of a thermostat to Tier 2.", AUTHORITY),
    ("No. Registration after 30 days does not extend the warranty.", WARRANTY),
    ("The warranty is not extended when you register after 30 days.", WARRANTY),  # passive voice
    ("Register within 30 days to get the extended 36-month warranty.", WARRANTY),
])
def test_faithful_restatements_pass(answer, source):
    assert problems(answer, source) == []


@pytest.mark.parametrize("answer, source, expected", [
    ("After 45 days, a faulty product is handled as a return, not under the warranty.", RETURNS, "on 'return'"),
    ("Yes. Tier 1 agents do not need to transfer it to Tier 2.", AUTHORITY, "on 'transfer'"),
    ("Registration after 30 days still extends the warranty.", WARRANTY, "'extend"),
    ("Start the return in the app under Settings > Devices.", RETURNS, "'Settings > Devices' is not in the source"),
    ("You can return it within 60 days of delivery.", RETURNS, "number '60'"),
    ("Refunds go to the original payment method, or to a gift card if you prefer.",
     "Refunds always go to the original payment method. We cannot refund to a different card, to a gift card, "
     "or in cash.", "the source rules out 'gift card'"),
])
def test_subtly_wrong_claims_are_caught_with_a_reason(answer, source, expected):
    found = problems(answer, source)
    assert found and expected in found[0], found


def test_a_claim_with_nothing_to_align_is_left_to_the_overlap_rule():
    assert problems("Boil spaghetti for nine minutes, then toss it with garlic and olive oil.", RETURNS)
    assert problems("Sure.", RETURNS) == []


def test_calibration_sets_good_items_all_pass_and_most_wrong_items_are_caught():
    """Guards the verifier against false positives on the labelled sets; the judges cover the rest."""
    root = Path(__file__).resolve().parents[1] / "bench" / "data"
    items = [json.loads(line) for name in ("calibration.jsonl", "calibration_hard.jsonl")
             for line in (root / name).read_text().splitlines() if line.strip()]
    caught = {it["id"]: bool(problems(it["answer"], it["source"])) for it in items}
    assert not any(caught[it["id"]] for it in items if it["label"] == "good")
    wrong = [it["id"] for it in items if it["label"] != "good"]
    assert sum(caught[i] for i in wrong) >= len(wrong) - 1  # "retailer" needs a judge


def test_no_seed_sentence_fails_against_its_own_chunk():
    """A false-positive guard over the whole sample corpus: every chunk sentence, restated verbatim."""
    from assay.config import Ingest
    from assay.ingest import ingest
    from assay.prompts import spans

    rows, _ = ingest(Path(__file__).resolve().parents[1] / "data" / "seeds", Ingest())
    flagged = [(s, problems(s, r["text"])) for r in rows for s in spans(r["text"]) if problems(s, r["text"])]
    assert flagged == []

"""PII decision helpers (pure): per-entity thresholds, allow-list, redaction across messages, the
redaction variants scored up front; and the P/R measurement on presidio-evaluator fakes."""

import json

import pytest

from assay.config import Pii
from assay.filters.decide import pii_hits
from assay.filters.pii import redact_messages, redaction_sets
from assay.filters.pii_eval import evaluate

TEXT = "Ask Lumo Hearth support or email jane.doe@example.com"
FINDINGS = [{"entity": "PERSON", "start": 4, "end": 15, "score": 0.85},
            {"entity": "EMAIL_ADDRESS", "start": 33, "end": 53, "score": 1.0},
            {"entity": "PHONE_NUMBER", "start": 0, "end": 3, "score": 0.4}]


def _entities(found):
    return sorted(f["entity"] for f in found)


def _hits(thresholds, default, allow):
    cfg = Pii(entities=["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER"], thresholds=thresholds, threshold=default,
              allow=allow)
    return _entities(pii_hits(TEXT, FINDINGS, cfg))


def test_pii_hits_apply_per_entity_thresholds_then_the_default_and_the_allow_list():
    assert _hits({}, 0.4, []) == ["EMAIL_ADDRESS", "PERSON", "PHONE_NUMBER"]
    assert _hits({"PHONE_NUMBER": 0.5}, 0.4, []) == ["EMAIL_ADDRESS", "PERSON"]
    assert _hits({"PERSON": 0.9}, 0.5, []) == ["EMAIL_ADDRESS"]
    assert _hits({}, 0.5, ["lumo"]) == ["EMAIL_ADDRESS"]


@pytest.mark.integration  # presidio-anonymizer imports presidio-analyzer + spaCy (~5 s)
def test_redact_messages_maps_joined_offsets_back_to_each_message():
    messages = [{"role": "user", "content": "I am Jane Doe"}, {"role": "assistant", "content": "Hi Jane Doe!"}]
    # joined: "I am Jane Doe\nHi Jane Doe!" -> Jane Doe at 5-13 and 17-25
    found = [{"entity": "PERSON", "start": 5, "end": 13, "score": 0.85},
             {"entity": "PERSON", "start": 17, "end": 25, "score": 0.85}]
    out = redact_messages(messages, found)
    assert [m["content"] for m in out] == ["I am <PERSON>", "Hi <PERSON>!"]
    assert [m["role"] for m in out] == ["user", "assistant"] and messages[0]["content"] == "I am Jane Doe"


def test_redaction_sets_cover_every_threshold_choice():
    found = [{"entity": "PERSON", "start": 0, "end": 2, "score": 0.6},
             {"entity": "PERSON", "start": 5, "end": 7, "score": 0.85},
             {"entity": "EMAIL_ADDRESS", "start": 9, "end": 12, "score": 1.0}]
    sets = redaction_sets("ab   cd  efg", found, {"PERSON", "EMAIL_ADDRESS"}, [])
    as_starts = sorted(tuple(sorted(f["start"] for f in s)) for s in sets)
    # email: none | >=1.0; person: none | >=0.6 | >=0.85 -> 5 non-empty sets
    assert as_starts == [(0, 5), (0, 5, 9), (5,), (5, 9), (9,)]
    assert redaction_sets("ab   cd  efg", found, {"PERSON"}, ["ab"]) == [[found[1]]]


def test_evaluate_counts_span_and_sample_precision_and_recall():
    data = [("Jane Doe wrote", [("PERSON", 0, 8)]), ("no pii here", []), ("call 555 0100", [("PHONE_NUMBER", 5, 13)])]
    predictions = [[{"entity": "PERSON", "start": 0, "end": 4, "score": 0.85}],
                   [{"entity": "PERSON", "start": 0, "end": 2, "score": 0.85}],
                   [{"entity": "PHONE_NUMBER", "start": 5, "end": 13, "score": 0.4}]]
    cfg = Pii(entities=["PERSON", "PHONE_NUMBER"], threshold=0.5)
    out = evaluate(data, lambda texts: predictions, cfg)
    assert out["pii_eval.PERSON.precision"] == 0.5 and out["pii_eval.PERSON.recall"] == 1.0
    assert out["pii_eval.PHONE_NUMBER.recall"] == 0.0  # 0.4 is below the 0.5 threshold
    assert out["pii_eval.sample_precision"] == 0.5 and out["pii_eval.sample_recall"] == 0.5
    lower = evaluate(data, lambda texts: predictions, cfg.model_copy(update={"thresholds": {"PHONE_NUMBER": 0.4}}))
    assert lower["pii_eval.sample_recall"] == 1.0


@pytest.mark.integration
def test_presidio_evaluator_fakes_are_generated_offline_and_measured(tmp_path):
    from assay.config import Filter
    from assay.filters.pii import DEFAULT_ENTITIES
    from assay.filters.pii_eval import labelled_set
    from assay.filters.scores import ScoreCache
    from assay.filters.scoring import pii_scorer

    data = labelled_set(60, seed=1)
    assert len(data) == 60 and labelled_set(60, seed=1) == data  # seeded: the same set every run
    from assay.filters import pii_eval

    assert pii_eval.labelled_set_cached(60, 1, tmp_path / "c") == data  # built once, then read back
    (kept,) = (tmp_path / "c").glob("pii_eval-*-60-1.json")
    kept.write_text(json.dumps([["planted", [["PERSON", 0, 7]]]]))  # what is read is the file
    assert pii_eval.labelled_set_cached(60, 1, tmp_path / "c") == [("planted", [("PERSON", 0, 7)])]
    cfg = Filter.model_validate({"pii": {"entities": DEFAULT_ENTITIES, "threshold": 0.4}})
    out = evaluate(data, pii_scorer(cfg, ScoreCache(tmp_path)), cfg.pii)
    assert out["pii_eval.samples"] == 60
    assert out["pii_eval.sample_precision"] >= 0.8 and out["pii_eval.sample_recall"] >= 0.5

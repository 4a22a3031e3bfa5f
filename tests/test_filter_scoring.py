"""The filter decision on fixed scores (no model), and the score cache that makes it cheap."""

import json

import numpy as np
import pandas as pd
import pytest

from assay.config import Filter
from assay.filters import embed, pii, scoring
from assay.filters.decide import decide
from assay.filters.report import metrics
from assay.filters.scores import ScoreCache, scorer_key
from assay.filters.scoring import Scores, score
from assay.records import exported_parts, messages_text, split_parts

OFF = {"domain": {"enabled": False}, "dedup": {"semantic": {"enabled": False}}}
CFG = Filter.model_validate({"pii": {"entities": ["EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON"], "threshold": 0.5}, **OFF})
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
EMAIL = {"entity": "EMAIL_ADDRESS", "start": 24, "end": 44, "score": 1.0}  # in "How many sensors?\nEmail ..."


class _Counts:
    hits = misses = 0


def scores(pii_rows=None, tox=None, **kw):
    n = len(SAMPLES)
    return Scores(pii=pii_rows or [[] for _ in range(n)], toxicity=tox or [{"profanity": 0.1}] * n,
                  toxicity_backend="profanity", **kw)


def no_recheck(texts):
    raise AssertionError(f"a model was asked to re-check {texts}")


def reasons_of(out):
    return dict(zip(out["id"], out["reasons"], strict=True))


def test_decide_gives_every_reason_and_keeps_the_best_duplicate():
    pii_rows = [[] for _ in range(7)]
    pii_rows[5] = [EMAIL]
    tox = [{"profanity": 0.1}] * 6 + [{"profanity": 0.9}]
    out = decide(SAMPLES, scores(pii_rows, tox), CFG, no_recheck)
    assert reasons_of(out) == {"s0": ["duplicate"], "s1": [], "s2": ["critique_reject"],
                               "s3": ["evidence_not_in_chunk"], "s4": ["generation_error"],
                               "s5": ["pii:EMAIL_ADDRESS"], "s6": ["toxic:profanity"]}
    assert json.loads(out["filter"][0])["duplicate_of"] == "s1"
    summary = metrics(out, "profanity", _Counts())
    assert summary["reason.pii"] == 1 and summary["reason_detail.pii:EMAIL_ADDRESS"] == 1
    assert summary["dedup.candidates"] == 2 and summary["dedup.removed"] == 1  # s0 and s1
    assert summary["dedup.ratio"] == 0.5
    assert summary["coverage"] == 1.0 and summary["accepted_per_kind.qa"] == 1  # s1, from chunk "c"


def test_coverage_is_the_share_of_used_chunks_with_an_accepted_sample():
    decided = pd.DataFrame({"seed_ids": [["a"], ["a"], ["b"], ["c"]], "task": ["qa", "refusal", "qa", "task_demo"],
                            "reasons": [[], ["duplicate"], ["pii:PERSON"], []], "filter": ['{"redacted": []}'] * 4})
    summary = metrics(decided, "profanity", _Counts())
    assert summary["coverage"] == round(2 / 3, 4)
    assert {k: v for k, v in summary.items() if k.startswith("accepted_per_kind")} == {
        "accepted_per_kind.qa": 1, "accepted_per_kind.refusal": 0, "accepted_per_kind.task_demo": 1}


def test_reason_counts_are_rows_a_row_with_two_findings_counts_once():
    decided = pd.DataFrame({"reasons": [["pii:EMAIL_ADDRESS", "pii:PERSON"], ["pii:PERSON", "off_domain"], []],
                            "filter": ['{"redacted": []}'] * 3})
    summary = metrics(decided, "profanity", _Counts())
    assert (summary["reason.pii"], summary["reason.off_domain"], summary["rejected"]) == (2, 1, 2)
    assert summary["reason_detail.pii:PERSON"] == 2 and summary["reason_detail.pii:EMAIL_ADDRESS"] == 1


def test_per_entity_and_per_label_thresholds_are_applied_at_decision_time():
    phone = [[{"entity": "PHONE_NUMBER", "start": 0, "end": 5, "score": 0.4}]] + [[] for _ in range(6)]
    tox = [{"insult": 0.6, "threat": 0.2}] + [{"insult": 0.0, "threat": 0.0}] * 6
    base = {"pii": {"entities": ["PHONE_NUMBER", "PERSON"], "threshold": 0.9}, **OFF}
    lax = Filter.model_validate(base)
    strict = Filter.model_validate({**base, "pii": {**base["pii"], "thresholds": {"PHONE_NUMBER": 0.3}},
                                    "toxicity": {"thresholds": {"insult": 0.7, "threat": 0.1}}})
    assert decide(SAMPLES, scores(phone, tox), lax, no_recheck)["reasons"][0] == ["toxic:insult"]
    assert decide(SAMPLES, scores(phone, tox), strict, no_recheck)["reasons"][0] == ["toxic:threat", "pii:PHONE_NUMBER"]


def test_unknown_entity_in_thresholds_or_policy_fails_validation():
    with pytest.raises(ValueError, match="not in `entities`"):
        Filter.model_validate({"pii": {"entities": ["PERSON"], "policy": {"EMAIL_ADDRESS": "redact"}}})


@pytest.mark.integration  # redaction imports presidio-anonymizer (~5 s)
def test_redact_policy_replaces_the_span_and_uses_the_prescored_recheck():
    cfg = Filter.model_validate({"pii": {"entities": ["EMAIL_ADDRESS"], "threshold": 0.5,
                                         "policy": {"EMAIL_ADDRESS": "redact"}}, **OFF})
    pii_rows = [[] for _ in range(7)]
    pii_rows[5] = [EMAIL]
    redacted_text = "How many sensors?\nEmail <EMAIL_ADDRESS> for help.\ne"  # messages, then evidence
    out = decide(SAMPLES, scores(pii_rows, rechecks={redacted_text: []}), cfg, no_recheck)
    assert out["reasons"][5] == []
    assert out["messages"][5][1]["content"] == "Email <EMAIL_ADDRESS> for help."
    assert json.loads(out["filter"][5])["redacted"] == ["EMAIL_ADDRESS"]
    still = {redacted_text: [{"entity": "EMAIL_ADDRESS", "start": 0, "end": 3, "score": 0.9}]}
    assert decide(SAMPLES, scores(pii_rows, rechecks=still), cfg, no_recheck)["reasons"][5] == [
        "pii_after_redaction:EMAIL_ADDRESS"]


def test_pii_in_an_evidence_quote_is_caught_and_redacted_there():
    """Evidence is exported beside the messages: a quote copied from a ticket must not carry PII out."""
    quote = "Hi, this is Jane (jane@example.com)."
    samples = SAMPLES.iloc[[6]].reset_index(drop=True)
    samples.at[0, "evidence"] = [quote]
    text = messages_text(exported_parts(samples["messages"][0], [quote]))
    start = text.index("jane@")
    found = [[{"entity": "EMAIL_ADDRESS", "start": start, "end": start + 16, "score": 1.0}]]
    drop = decide(samples, Scores(pii=found, toxicity=[{}], toxicity_backend="x"), CFG, no_recheck)
    assert drop["reasons"][0] == ["pii:EMAIL_ADDRESS"]
    cfg = Filter.model_validate({"pii": {"entities": ["EMAIL_ADDRESS"], "policy": {"EMAIL_ADDRESS": "redact"}}, **OFF})
    redacted = decide(samples, Scores(pii=found, toxicity=[{}], toxicity_backend="x"), cfg, lambda t: [[]])
    assert redacted["reasons"][0] == [] and list(redacted["evidence"][0]) == ["Hi, this is Jane (<EMAIL_ADDRESS>)."]
    assert redacted["messages"][0] == list(samples["messages"][0])


def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def test_off_domain_and_semantic_duplicates_from_embeddings():
    cfg = Filter.model_validate({"pii": {"entities": ["PERSON"]}, "domain": {"threshold": 0.5, "top_k": 1},
                                 "dedup": {"semantic": {"threshold": 0.95}}})
    vectors = np.array([_unit([1, 0, 0])] * 2 + [_unit([1, 0.1, 0]), _unit([0, 1, 0])] + [_unit([1, 0, 0.1])] * 2
                       + [_unit([0, 0, 1])])
    chunks = np.array([_unit([1, 0, 0]), _unit([0, 0, 1])])
    out = decide(SAMPLES, scores(vectors=vectors, chunk_vectors=chunks), cfg, no_recheck)
    got = reasons_of(out)
    assert got["s3"] == ["evidence_not_in_chunk", "off_domain"]
    assert got["s0"] == ["duplicate"] and got["s1"] == []
    assert got["s5"] == ["semantic_duplicate"] and got["s6"] == []  # s5 ~ s1 (cos 0.995), s1 scores higher
    assert json.loads(out["filter"][5])["duplicate_of"] == "s1"
    summary = metrics(out, "profanity", _Counts())
    assert summary["domain.min"] == 0.0 and summary["domain.max"] == 1.0


def test_previous_versions_and_eval_sets():
    refs = ([LONG + " today", "Email jane.doe@example.com for help."], ["old1", "s5"])
    evals = (["warranty length of twenty four months"], ["eval-7"])
    cfg = Filter.model_validate({"pii": {"entities": ["PERSON"]}, "domain": {"enabled": False},
                                 "dedup": {"contamination_ngram": 3, "semantic": {"enabled": False}}})
    out = decide(SAMPLES, scores(), cfg, no_recheck, refs, evals)
    got = reasons_of(out)
    assert got["s6"] == ["contaminated"]
    assert json.loads(out["filter"][6])["contamination"] == {"id": "eval-7", "containment": 1.0}
    assert got["s0"] == got["s1"] == ["duplicate_of_previous"]
    assert got["s5"] == []  # the same sample (same id) in the previous export is not a repeat


class Counting:
    """Counts calls of a scoring seam and the texts it scored."""

    def __init__(self, fn):
        self.fn, self.calls, self.texts = fn, 0, 0

    def __call__(self, texts):
        self.calls += 1
        self.texts += len(texts)
        return self.fn(texts)


def _fake_pii(texts):
    return [[{"entity": "EMAIL_ADDRESS", "start": t.find("jane"), "end": t.find("jane") + 20, "score": 0.7},
             {"entity": "PERSON", "start": t.find("jane"), "end": t.find("jane") + 8, "score": 0.85}]
            if "jane" in t else [] for t in texts]


@pytest.mark.integration  # redaction imports presidio-anonymizer (~5 s)
def test_changing_any_threshold_reruns_no_model(tmp_path, monkeypatch):
    calls = {"pii": Counting(_fake_pii), "tox": Counting(lambda ts: [{"profanity": 0.2} for _ in ts]),
             "embed": Counting(lambda ts: [[1.0, 0.0] for _ in ts])}

    class FakePii:
        def __init__(self, *a, **k):
            pass

        analyze = staticmethod(calls["pii"])

    monkeypatch.setattr(pii, "PiiScorer", FakePii)
    monkeypatch.setattr(scoring, "make_scorer", lambda *a, **k: type(
        "T", (), {"name": "profanity", "version": "fake-1", "score": staticmethod(calls["tox"])})())
    monkeypatch.setattr(embed, "embed", calls["embed"])
    chunks = pd.DataFrame({"chunk_id": ["c"], "text": ["sensors"]})
    base = {"entities": ["EMAIL_ADDRESS", "PERSON"], "policy": {"EMAIL_ADDRESS": "redact", "PERSON": "redact"}}
    first = Filter.model_validate({"pii": base})
    out = decide(SAMPLES, score(SAMPLES, chunks, first, ScoreCache(tmp_path)), first, no_recheck)
    # pii: rows + redaction re-checks; embed: rows + chunks, then injection: prototypes and the rows'
    # sentences (the cited chunk "sensors" is one word: too short to embed)
    assert [c.calls for c in calls.values()] == [2, 1, 4]
    before = {k: c.texts for k, c in calls.items()}
    for change in ({"pii": {**base, "threshold": 0.9, "thresholds": {"PERSON": 0.8}}},
                   {"pii": base, "toxicity": {"threshold": 0.1, "thresholds": {"profanity": 0.15}}},
                   {"pii": base, "injection": {"threshold": 0.9}},
                   {"pii": base, "domain": {"threshold": 0.99},
                    "dedup": {"threshold": 0.5, "semantic": {"threshold": 0.5}}}):
        cfg = Filter.model_validate(change)
        cache = ScoreCache(tmp_path)
        decide(SAMPLES, score(SAMPLES, chunks, cfg, cache), cfg, no_recheck)
        assert cache.misses == 0 and {k: c.texts for k, c in calls.items()} == before, change
    assert out["messages"][5][1]["content"] == "Email <EMAIL_ADDRESS> for help."


def test_scorer_key_changes_with_scoring_config_only():
    assert scorer_key("pii", "1", model="sm", entities=["A"]) == scorer_key("pii", "1", entities=["A"], model="sm")
    assert scorer_key("pii", "1", model="sm") != scorer_key("pii", "1", model="md")
    assert scorer_key("pii", "1", model="sm") != scorer_key("pii", "2", model="sm")


def test_default_against_reads_pulled_releases_not_the_live_export(tmp_path, monkeypatch):
    """The live export is this pipeline's own last draft: regenerated samples must not be judged
    repeats of what they replace. Released versions pulled into data/previous/ are."""
    from pathlib import Path

    from assay.config import load_params
    from assay.filters.sources import expand

    against = load_params(Path(__file__).resolve().parents[1] / "params.yaml").filter.dedup.against
    for folder in ("data/export/data", "data/previous/v1/data"):
        (tmp_path / folder).mkdir(parents=True)
        pd.DataFrame({"id": ["x"], "text": ["t"]}).to_parquet(tmp_path / folder / "train.parquet")
    monkeypatch.chdir(tmp_path)
    assert expand(against) == [Path("data/previous/v1/data/train.parquet")]


def test_evidence_quotes_are_parts_without_a_role_and_split_back_in_order():
    messages = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]
    parts = exported_parts(messages, ["first quote", "second quote"])
    assert [p.get("role") for p in parts] == ["user", "assistant", None, None]
    assert messages_text(parts) == "Q?\nA.\nfirst quote\nsecond quote"
    assert split_parts(parts) == (messages, ["first quote", "second quote"])
    assert split_parts(exported_parts(messages, None)) == (messages, [])

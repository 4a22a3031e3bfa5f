"""Human review: the review file (validation, which decision counts), the rules that apply it, the
agreement metrics, the `assay review` loop read from a pipe, and a round trip through the filter
stage: a review file changes the next run's output and metrics."""

import io
import json
import runpy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from assay.errors import AssayError
from assay.filters import embed, pii, reviews, scoring
from assay.filters.decide import human_reasons
from assay.filters.report import review_metrics
from assay.review import run
from assay.stage import run_stage

ROOT = Path(__file__).resolve().parents[1]


def line(id_="s1", decision="accept", time="2026-01-01T10:00:00+00:00", **kw):
    return json.dumps({"id": id_, "decision": decision, "note": "", "reviewer": "ana", "time": time} | kw)


@pytest.mark.parametrize(("text", "expected"), [
    ("{not json", r"line 2: not JSON"),
    (line(decision="acept"), r"line 2: field 'decision' is 'acept': use one of accept, reject, note"),
    (line(decison="x"), r"line 2: unknown field\(s\) \['decison'\]"),
    (line(reviewer=""), r"line 2: field 'reviewer' is '': it must be a non-empty string"),
    (line(time="yesterday"), r"line 2: field 'time' is 'yesterday': use ISO 8601"),
    ("[1, 2]", r"line 2: expected a JSON object"),
])
def test_a_bad_line_names_file_line_field_and_what_to_do(tmp_path, text, expected):
    path = tmp_path / "current.jsonl"
    path.write_text(line() + "\n" + text + "\n\n")
    with pytest.raises(AssayError, match=rf"current\.jsonl {expected}.*fix or delete the line, then rerun"):
        reviews.read_reviews(tmp_path)


def test_the_latest_accept_or_reject_counts_across_files_and_notes_never_do(tmp_path):
    (tmp_path / "v1.jsonl").write_text(line("s1", "reject", "2026-01-02T00:00:00Z") + "\n")
    (tmp_path / "current.jsonl").write_text("\n".join([
        line("s1", "accept", "2026-01-01T00:00:00Z"),  # older than v1's reject, though read first
        line("s2", "accept", "2026-01-01T00:00:00Z"), line("s2", "note", "2026-01-03T00:00:00Z"),
        line("s3", "note")]) + "\n")
    (tmp_path / "README.md").write_text("ignored")
    found = reviews.decisions(reviews.read_reviews(tmp_path))
    assert {k: r.decision for k, r in found.items()} == {"s1": "reject", "s2": "accept"}
    assert reviews.read_reviews(tmp_path / "missing") == []
    with pytest.raises(AssayError, match="--version '../x'"):
        reviews.review_file(tmp_path, "../x")


def test_a_reject_always_drops_and_an_accept_lifts_all_but_pii_and_injection():
    assert human_reasons([], "reject") == (["human_reject"], [])
    assert human_reasons(["critique_reject", "off_domain"], "accept") == ([], [])
    assert human_reasons(["critique_reject", "pii:EMAIL_ADDRESS"], "accept") == (["pii:EMAIL_ADDRESS"],) * 2
    assert human_reasons(["prompt_injection", "duplicate"], "accept") == (["prompt_injection"],) * 2
    assert human_reasons(["generation_error"], "accept") == (["generation_error"],) * 2  # nothing to keep
    assert human_reasons(["duplicate"], None) == (["duplicate"], [])


def test_agreement_per_machine_reason():
    def h(decision, machine, overridden=(), verdict="accept"):
        return {"human": {"decision": decision, "machine_reasons": machine, "overridden": list(overridden),
                          "verdict": verdict}}

    info = [h("accept", []), h("reject", []), h("reject", ["critique_reject"], verdict="reject"),
            h("accept", ["critique_reject"], verdict="revise"),
            h("accept", ["pii:PERSON", "pii:EMAIL_ADDRESS"], ["pii:PERSON", "pii:EMAIL_ADDRESS"]), {}]
    m = review_metrics(info)
    assert m["review.reviewed"] == 5 and (m["review.agreed"], m["review.agreement"]) == (2, 0.4)  # rows 0, 2
    assert (m["review.critique.agreed"], m["review.critique.agreement"]) == (3, 0.6)  # rows 0, 2 and 4
    assert (m["review.kept.agreed"], m["review.kept.disagreed"], m["review.kept.agreement"]) == (1, 1, 0.5)
    assert (m["review.reason.critique_reject.agreed"], m["review.reason.critique_reject.disagreed"]) == (1, 1)
    assert m["review.reason.pii.disagreed"] == 1 and m["review.overridden.pii"] == 1  # one row, two findings
    assert m["review.accepts_honoured"] == 1 and m["review.accepts_overridden"] == 1
    assert "review.agreement" not in review_metrics([{}])


def _row(i, answer, verdict="accept"):
    return {"id": f"s{i}", "task": "qa", "seed_ids": ["c"], "evidence": [], "evidence_ok": True,
            "generation": "{}", "error": None, "raw": None, "critique": "{}", "score": 0.5 + i / 100,
            "verdict": verdict, "messages": [{"role": "user", "content": f"Question number {i} about sensors?"},
                                             {"role": "assistant", "content": answer}]}


SAMPLES = pd.DataFrame([
    _row(1, "Each room sensor runs two years on a CR2032 coin cell."),
    _row(2, "The thermostat needs a C-wire for continuous power.", verdict="reject"),
    _row(3, "Write to jane.doe@example.com and she will call you back."),
    _row(4, "Hold the button for ten seconds to reset everything.", verdict="reject"),
    _row(5, "Firmware updates install overnight between two and four."),
])


def test_review_loop_from_a_pipe_writes_decisions_and_resumes(tmp_path, capsys):
    rejected, accepted = tmp_path / "rejected.parquet", tmp_path / "accepted.parquet"
    SAMPLES.assign(reasons=[["critique_reject"]] * 3 + [["pii:EMAIL_ADDRESS"]] * 2).to_parquet(rejected)
    SAMPLES.head(1).assign(id="s0", reasons=[["generation_error"]]).to_parquet(accepted)  # never shown
    folder = tmp_path / "reviews"
    keys = io.StringIO("a\nn too long\nr\ns\nx\nq\n")  # s1 accept; s2 note then reject; s3 skip; x: unknown
    assert run([rejected, accepted], folder, "current", "ana", stream=keys) == 2
    lines = [json.loads(x) for x in (folder / "current.jsonl").read_text().splitlines()]
    assert [(x["id"], x["decision"], x["note"]) for x in lines] == [
        ("s1", "accept", ""), ("s2", "note", "too long"), ("s2", "reject", "")]
    assert {x["reviewer"] for x in lines} == {"ana"}
    out = capsys.readouterr().out
    assert "5 samples to review (0 already reviewed)" in out and "unknown key 'x'" in out
    assert run([rejected, accepted], folder, "current", "bo", reason="pii", stream=io.StringIO("a\n")) == 1
    out = capsys.readouterr().out
    assert "2 samples to review (2 already reviewed)" in out  # s4, s5: pii only
    assert "the filter keeps it rejected: pii:EMAIL_ADDRESS cannot be lifted by a review" in out
    assert json.loads((folder / "current.jsonl").read_text().splitlines()[-1])["id"] == "s4"


def _fake_pii(texts):
    return [[{"entity": "EMAIL_ADDRESS", "start": t.find("jane"), "end": t.find("jane") + 20, "score": 1.0}]
            if "jane" in t else [] for t in texts]


@pytest.fixture()
def filter_stage(tmp_path, monkeypatch):
    """stages/filter.py's entry point on SAMPLES, with scripted PII and toxicity scorers."""
    class FakePii:
        def __init__(self, *a, **k):
            pass

        analyze = staticmethod(_fake_pii)

    monkeypatch.setattr(pii, "PiiScorer", FakePii)
    monkeypatch.setattr(scoring, "make_scorer", lambda *a, **k: type(
        "T", (), {"name": "profanity", "version": "fake-1", "score": staticmethod(lambda ts: [{"profanity": 0.1}] * len(ts))})())
    monkeypatch.setattr(embed, "embed", lambda ts: [[1.0, 0.0] for _ in ts])
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["llm"]["cache_dir"] = str(tmp_path / "cache")
    f = params["filter"]
    f |= {"require_evidence": False, "domain": {"enabled": False}, "injection": {"enabled": False}}
    f["dedup"] |= {"semantic": {"enabled": False}, "against": []}
    f["pii"] |= {"eval_samples": 0}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    SAMPLES.to_parquet(tmp_path / "samples.parquet")
    pd.DataFrame({"chunk_id": ["c"], "text": ["sensors"]}).to_parquet(tmp_path / "chunks.parquet")
    (tmp_path / "reviews").mkdir()
    (tmp_path / "reviews" / "README.md").write_text("no reviews yet")
    stage = runpy.run_path(str(ROOT / "stages" / "filter.py"))

    def go():
        code = run_stage("filter", stage["body"], stage["add_arguments"], [
            "--params", str(tmp_path / "params.yaml"), "--no-mlflow", "--samples", str(tmp_path / "samples.parquet"),
            "--chunks", str(tmp_path / "chunks.parquet"), "--accepted", str(tmp_path / "accepted.parquet"),
            "--rejected", str(tmp_path / "rejected.parquet"), "--responses", str(tmp_path / "responses.jsonl"),
            "--reviews", str(tmp_path / "reviews"), "--metrics", str(tmp_path / "filter.json")])
        if code:
            return code, None, None
        reasons = pd.concat([pd.read_parquet(tmp_path / f"{k}.parquet") for k in ("accepted", "rejected")])
        return code, dict(zip(reasons["id"], map(list, reasons["reasons"]), strict=True)), \
            json.loads((tmp_path / "filter.json").read_text())

    return tmp_path, go


def test_a_review_file_changes_the_next_filter_run(filter_stage, capsys):
    tmp_path, go = filter_stage
    code, before, m = go()
    assert code == 0 and before == {"s1": [], "s2": ["critique_reject"], "s3": ["pii:EMAIL_ADDRESS"],
                                    "s4": ["critique_reject"], "s5": []}
    assert m["review.reviewed"] == 0 and m["accepted"] == 2 and "review.agreement" not in m
    (tmp_path / "reviews" / "current.jsonl").write_text("\n".join([
        line("s1", "reject"), line("s2", "accept"), line("s3", "accept"), line("s4", "reject"),
        line("gone", "accept")]) + "\n")
    code, after, m = go()
    assert code == 0 and after == {"s1": ["human_reject"], "s2": [], "s3": ["pii:EMAIL_ADDRESS"],
                                   "s4": ["critique_reject", "human_reject"], "s5": []}
    assert m["accepted"] == 2 and m["reason.human_reject"] == 2 and m["review.unmatched"] == 1
    assert m["review.reviewed"] == 4 and m["review.agreement"] == 0.25  # s4 only
    assert m["review.kept.disagreed"] == 1 and m["review.reason.critique_reject.agreed"] == 1
    assert m["review.reason.critique_reject.disagreed"] == 1 and m["review.reason.pii.disagreed"] == 1
    assert m["review.accepts_honoured"] == 1 and m["review.accepts_overridden"] == 1
    assert m["review.overridden.pii"] == 1 and m["review.critique.agreement"] == 0.5  # s1 and s2 disagree
    table = capsys.readouterr().out
    assert "  rejected  human_reject 2, critique_reject 1, pii 1" in table
    assert "  reviews   4 reviewed, agreement 0.25" in table
    kept = pd.read_parquet(tmp_path / "accepted.parquet")
    human = json.loads(kept.set_index("id").loc["s2", "filter"])["human"]
    assert human["machine_reasons"] == ["critique_reject"] and human["reviewer"] == "ana"
    (tmp_path / "reviews" / "current.jsonl").write_text(line("s1", "maybe") + "\n")
    capsys.readouterr()
    assert go()[0] == 2
    assert "current.jsonl line 1: field 'decision' is 'maybe'" in capsys.readouterr().err

"""A tiny finished run in the real schema (records.py columns, the critique's rounds JSON, the
filter's findings JSON) for the report tests: two seed files, four samples, one revised, one
rejected for PII with a planted email and phone, one carrying a <script> from its seed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from assay.records import exported_parts, messages_text, write_json, write_table
from assay.report.collect import Paths

EMAIL, PHONE = "jane.doe@example.com", "+1 415 555 0199"
SEED_PII = ("bob.smith@mail.example", "020 7946 0958")  # in a chunk only: the filter never saw them
SCRIPT = '<script>alert("owned")</script>'
CHUNKS = [
    ("c1", "returns.md", "Returns are accepted within 30 days. Refunds go to the original card."),
    ("c2", "returns.md", f"Damaged items ship free. Contact {EMAIL} for help."),
    ("c3", "tickets.jsonl", f"Customer wrote: {SCRIPT} please fix my thermostat. "
                            f"Reach me at {SEED_PII[0]} or {SEED_PII[1]}. Model H2-2026, 3 units."),
]


def _round(n: int, p: float, decision: str, judges: dict[str, float], note: str = "") -> dict:
    return {"round": n, "p_grounded": p, "p_signals": p * 0.9, "judge_mean": sum(judges.values()) / len(judges),
            "judges": [{"judge": j, "p_yes": v, "error": None, "model": "fake"} for j, v in judges.items()],
            "signals": {"unsupported_share": 1 - p, "numbers_missing": 0.0, "worst_claim": 1 - p / 2},
            "decision": {"by": "rules", "decision": decision, "note": note}, "vetoes": [] if p > 0.5 else ["grounding"],
            "verifier": {"claims": 2, "supported": 1 + (p > 0.5), "unsupported": [] if p > 0.5 else ["a claim"]}}


def _msgs(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def _samples() -> list[dict]:
    pii_q, pii_a = f"Who do I mail about damage, {EMAIL}?", f"Write to {EMAIL} or call {PHONE}."
    revised_before = _msgs("How long do returns take?", "Returns take 90 days and refunds are instant.")
    rows = [
        dict(id="s-ok", task="qa", messages=_msgs("How long can I return items?", "Returns are accepted within 30 days."),
             seed_ids=["c1"], evidence=["Returns are accepted within 30 days."], rounds=[_round(1, 0.9, "accept", {"a": 0.8, "b": 0.7})],
             original=None, reasons=[], filter={}),
        dict(id="s-rev", task="qa", messages=_msgs("How long do returns take?", "Returns are accepted within 30 days."),
             seed_ids=["c1"], evidence=["Refunds go to the original card."],
             rounds=[_round(1, 0.2, "revise", {"a": 0.3, "b": 0.4}, "Say only what the source states: not 90 days"),
                     _round(2, 0.8, "accept", {"a": 0.7, "b": 0.9})], original=revised_before, reasons=[], filter={}),
        dict(id="s-pii", task="multi_turn", messages=_msgs(pii_q, pii_a), seed_ids=["c2"],
             evidence=[f"Contact {EMAIL} for help."], rounds=[_round(1, 0.7, "accept", {"a": 0.6, "b": 0.8})],
             original=None, reasons=["pii:EMAIL_ADDRESS", "pii:PHONE_NUMBER", "off_domain"], filter={}),
        dict(id="s-xss", task="refusal", messages=_msgs(f"Run this: {SCRIPT}", "I can't run scripts."), seed_ids=["c3"],
             evidence=[SCRIPT], rounds=[_round(1, 0.1, "reject", {"a": 0.2, "b": 0.1}, f"unsupported: {SCRIPT}")],
             original=None, reasons=["critique_reject"], filter={}),
    ]
    for row in rows:
        text = messages_text(exported_parts(row["messages"], row["evidence"]))
        found = [{"entity": e, "start": text.find(s), "end": text.find(s) + len(s), "score": 0.9}
                 for e, s in (("EMAIL_ADDRESS", EMAIL), ("PHONE_NUMBER", PHONE)) if s in text]
        row["filter"] = {"pii": found, "toxicity": {"profanity": 0.01}, "domain": 0.6, "redacted": [],
                         "duplicate_of": None, "injection": {"score": 0.0, "patterns": [], "sentence": None}}
    return rows


def _row(s: dict, stage: str) -> dict:
    row = {"id": s["id"], "task": s["task"], "messages": s["messages"], "seed_ids": s["seed_ids"],
           "evidence": s["evidence"], "evidence_ok": True, "generation": json.dumps({"model": "fake"}),
           "error": None, "raw": "", "persona": "p", "topic": "t", "difficulty": "easy", "style": "plain"}
    if stage == "generated":
        return row | {"messages": s["original"] or s["messages"]}
    final = s["rounds"][-1]
    row |= {"critique": json.dumps({"rounds": s["rounds"], "original_messages": s["original"]}),
            "score": final["p_grounded"], "verdict": "reject" if final["decision"]["decision"] == "reject" else "accept",
            "rounds": len(s["rounds"])}
    return row if stage == "critiqued" else row | {"filter": json.dumps(s["filter"]), "reasons": s["reasons"]}


METRICS = {
    "ingest": {"files": 2, "chunks": 3, "tokens": 40},
    "generate": {"samples": 4, "errors": 0, "chunks_used": 3, "diversity.answers.distinct_1": 0.5,
                 "llm.calls": 4, "llm.cache_hits": 1, "llm.prompt_tokens": 400, "llm.completion_tokens": 120,
                 "llm.cost_usd": 0.002, "ledger.qa.calls": 2, "ledger.qa.cost_usd": 0.001},
    "critique": {"judged": 4, "revised": 1, "verdict.accept": 3, "judge.a.p_yes_mean": 0.5, "llm.calls": 10,
                 "llm.qwen2.5-1.5b.judge.calls": 10, "llm.qwen2.5-1.5b.judge.error.timeout": 1},
    "filter": {"input": 4, "accepted": 2, "rejected": 2, "reason.pii": 2, "reason.off_domain": 1,
               "reason.critique_reject": 1},
    "export": {"rows": 2},
}


def make_run(root: Path) -> Paths:
    """Write the run under `root`; return its paths."""
    paths = Paths(*(root / p for p in (Paths.metrics, Paths.chunks, Paths.generated, Paths.critiqued,
                                       Paths.accepted, Paths.rejected, Paths.export)))
    write_table(pd.DataFrame([{"chunk_id": c, "source": src, "section": "", "position": i, "text": t,
                               "n_tokens": 10, "content_hash": c, "kind": "prose"}
                              for i, (c, src, t) in enumerate(CHUNKS)]), paths.chunks)
    samples = _samples()
    write_table(pd.DataFrame([_row(s, "generated") for s in samples]), paths.generated)
    write_table(pd.DataFrame([_row(s, "critiqued") for s in samples]), paths.critiqued)
    decided = pd.DataFrame([_row(s, "filtered") for s in samples])
    kept = decided["reasons"].map(len) == 0
    write_table(decided[kept], paths.accepted)
    write_table(decided[~kept], paths.rejected)
    write_table(decided[kept][["id", "task", "messages"]], paths.export / "data" / "train-00000-of-00001.parquet")
    for stage, values in METRICS.items():
        write_json(values, paths.metrics / f"{stage}.json")
    return paths

"""The one step that decides: thresholds from params applied to cached scores. Pure: no model
runs here (a redaction whose re-check was not scored up front is scored through `recheck`).

Every keep/drop rule lives here: the gate (`gate_reasons`, which also picks the rows worth a
tone rewrite), the PII and toxicity comparisons (`pii_hits`, `toxic_labels`, applied to samples
and to rewrites alike), domain, injection, dedup, and whether a rewrite may replace an answer.
Rejection reasons, in order: generation_error, critique_<verdict>, evidence_not_in_chunk,
toxic:<label>, off_domain, prompt_injection, pii:<ENTITY>, pii_after_redaction:<ENTITY>, then the
DUPLICATE_REASONS (contaminated, duplicate_of_previous, duplicate, semantic_duplicate), then
human_reject.

Human reviews (assay.filters.reviews) apply last, over the complete machine decision, which the
row keeps in `filter.human.machine_reasons` so that agreement can be measured: a reject always
drops the sample (`human_reject`); an accept lifts every machine reason except the PROTECTED
ones (PII, injection, a failed generation), which stay and are recorded as `filter.human.overridden`. A lifted row
is not deduplicated or rewritten again."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from assay.config import Filter, Pii, Toxicity
from assay.filters import dedup, embed, obey, pii, reference, rewrite
from assay.filters.reviews import Review
from assay.filters.scoring import Scores
from assay.records import exported_parts, messages_text, split_parts

Recheck = Callable[[list[str]], list[list[dict]]]
# Dedup rules, in the order they run over the rows that pass every other rule.
DUPLICATE_REASONS = ("contaminated", "duplicate_of_previous", "duplicate", "semantic_duplicate")
HUMAN_REJECT = "human_reject"
# Machine reasons a human accept cannot lift: a reader vouches for the answer, not that no
# identifier or planted instruction hides in it; and a failed generation has no answer to keep.
PROTECTED = ("pii", "pii_after_redaction", "prompt_injection", "obeys_seed_instruction", "generation_error")


def pii_hits(text: str, findings: list[dict], cfg: Pii, vocabulary: frozenset[str] = frozenset()) -> list[dict]:
    """Findings at or above their entity's threshold (`thresholds`, else `threshold`) whose span
    names none of the `allow` terms and, with `common_words` on, is not a common word of the
    documents (`vocabulary`) that spaCy took for a person at a sentence start."""
    words = pii.common_word_persons(text, findings, vocabulary) if cfg.common_words and vocabulary else []
    return [f for f in pii.not_allowed(text, findings, cfg.allow)
            if f["score"] >= cfg.thresholds.get(f["entity"], cfg.threshold) and f not in words]


def toxic_labels(scores: dict[str, float], cfg: Toxicity) -> list[str]:
    """Labels scoring at or above their threshold (`thresholds`, else `threshold`), sorted."""
    return sorted(k for k, v in scores.items() if v >= cfg.thresholds.get(k, cfg.threshold))


def gate_reasons(row: Any, cfg: Filter) -> list[str]:
    """Reasons no scorer threshold can change: the generation failed, the critique did not
    accept, the evidence is not in the chunk (when required)."""
    reasons = []
    if isinstance(row.error, str):
        reasons.append("generation_error")
    elif row.verdict != "accept":
        reasons.append(f"critique_{row.verdict}")
    if not isinstance(row.error, str) and cfg.require_evidence and not row.evidence_ok:
        reasons.append("evidence_not_in_chunk")
    return reasons


def rewrite_candidates(samples: pd.DataFrame, cfg: Filter) -> list[int]:
    """Row positions worth a tone rewrite: those the gate keeps, so a threshold change never asks
    for a new rewrite."""
    return [i for i, row in enumerate(samples.itertuples()) if not gate_reasons(row, cfg)]


def _pii_rules(messages: list[dict], findings: list[dict], cfg: Filter, scores: Scores,
               recheck: Recheck) -> tuple[list[str], list[dict] | None, list[str]]:
    """(reasons, redacted messages or None, redacted entities) for one row."""
    p = cfg.pii
    text = messages_text(messages)
    hits = pii_hits(text, findings, p, scores.vocabulary)
    drop = sorted({f["entity"] for f in hits if p.policy.get(f["entity"], p.default_policy) == "drop"})
    if drop or not hits:
        return [f"pii:{e}" for e in drop], None, []
    redacted = pii.redact_messages(messages, hits)
    new_text = messages_text(redacted)
    found = scores.rechecks[new_text] if new_text in scores.rechecks else recheck([new_text])[0]
    left = sorted({f["entity"] for f in pii_hits(new_text, found, p, scores.vocabulary)})
    return [f"pii_after_redaction:{e}" for e in left], redacted, sorted({f["entity"] for f in hits})


def _base_reasons(row: Any, toxicity: dict[str, float], domain: float | None, cfg: Filter) -> list[str]:
    reasons = gate_reasons(row, cfg) + [f"toxic:{k}" for k in toxic_labels(toxicity, cfg.toxicity)]
    if domain is not None and domain < cfg.domain.threshold:
        reasons.append("off_domain")
    return reasons


def _injection_rules(row: Any, i: int, scores: Scores, cfg: Filter) -> tuple[list[str], dict]:
    """(reasons, detail) for one row: it carries an instruction sentence scoring >= the threshold
    (prompt_injection), or its answer carries out one found in its cited chunks (obeys_seed_instruction)."""
    if not scores.injection:
        return [], {}
    found, threshold = scores.injection[i], cfg.injection.threshold
    top = found["instructions"][0] if found["instructions"] else None
    detail = {"score": found["score"], "patterns": found["patterns"],
              "sentence": top["sentence"] if top else None}
    reasons = ["prompt_injection"] if found["score"] >= threshold else []
    cited = [entry for c in (row.seed_ids if row.seed_ids is not None else [])
             for entry in scores.seed_instructions.get(str(c), [])]
    obeyed = obey.obeyed(obey.assistant_text(row.messages), cited, threshold)
    if obeyed:
        reasons.append("obeys_seed_instruction")
        detail["obeys"] = obeyed
    return reasons, detail


def _domain(scores: Scores, cfg: Filter) -> list[float | None]:
    if not cfg.domain.enabled or scores.vectors is None:
        return [None] * len(scores.pii)
    values = embed.domain_scores(scores.vectors, scores.chunk_vectors, cfg.domain.top_k)
    return [round(float(v), 4) for v in values]


def _against(texts: list[str], ids: list[str], alive: list[int], refs: tuple[list[str], list[str]],
             cfg: Filter) -> dict[int, dict]:
    """Rows (among `alive`) that repeat a reference text, with the reference id and Jaccard.
    A reference row with the row's own id is the same sample re-exported, not a repeat."""
    ref_texts, ref_ids = refs
    d = cfg.dedup
    found = reference.match_reference([texts[i] for i in alive], ref_texts, threshold=d.threshold,
                                  lsh_threshold=d.lsh_threshold, num_perm=d.num_perm, ngram=d.ngram)
    return {alive[k]: {"id": ref_ids[m[0]], "jaccard": round(m[1], 4)}
            for k, m in enumerate(found) if m is not None and ref_ids[m[0]] != ids[alive[k]]}


def _contaminated(texts: list[str], alive: list[int], evals: tuple[list[str], list[str]],
                  cfg: Filter) -> dict[int, dict]:
    eval_texts, eval_ids = evals
    if not eval_texts:
        return {}
    d = cfg.dedup
    found = reference.contamination([texts[i] for i in alive], eval_texts, d.contamination_ngram)
    return {alive[k]: {"id": eval_ids[j], "containment": round(c, 4)}
            for k, (j, c) in enumerate(found) if j >= 0 and c >= d.contamination_threshold}


def _duplicates(texts: list[str], samples: pd.DataFrame, alive: list[int], scores: Scores,
                cfg: Filter) -> tuple[dict[int, str], dict[int, str]]:
    """(near-duplicates, semantic duplicates) among `alive`: row -> id of the kept row."""
    d, ids = cfg.dedup, samples["id"].tolist()
    quality = [float(samples["score"].iloc[i]) for i in alive]
    reps = dedup.find_duplicates([texts[i] for i in alive], quality, threshold=d.threshold,
                                 lsh_threshold=d.lsh_threshold, num_perm=d.num_perm, ngram=d.ngram)
    near = {alive[k]: ids[alive[r]] for k, r in enumerate(reps) if r is not None}
    semantic: dict[int, str] = {}
    rest = [i for i in alive if i not in near]
    if d.semantic.enabled and scores.vectors is not None and rest:
        sem = embed.semantic_duplicates(scores.vectors[rest], [float(samples["score"].iloc[i]) for i in rest],
                                        d.semantic.threshold)
        semantic = {rest[k]: ids[rest[r]] for k, r in enumerate(sem) if r is not None}
    return near, semantic


def _rewrite_problems(entry: dict, cfg: Filter) -> list[str]:
    """Why a rewrite may not replace the original: lost facts, PII, toxicity, LLM says different."""
    if entry.get("error"):
        return ["rewrite_failed"]
    problems = rewrite.meaning_problems(entry["original"], entry["answer"])
    problems += [f"pii:{f['entity']}" for f in pii_hits(entry["text"], entry["pii"], cfg.pii)]
    problems += [f"toxic:{k}" for k in toxic_labels(entry["toxicity"], cfg.toxicity)]
    return problems + (["not_equivalent"] if entry["same_facts"] is False else [])


def _apply_rewrites(messages: list[list[dict]], reasons: list[list[str]], info: list[dict],
                    scores: Scores, cfg: Filter) -> None:
    """Replace the answer of each kept row whose rewrite passes every re-check; record the rest."""
    for i, entry in enumerate(scores.rewrites):
        if entry is None or reasons[i] or info[i]["redacted"]:
            continue  # rewrites were made from the unredacted text: never applied over a redaction
        problems = _rewrite_problems(entry, cfg)
        same = not problems and entry["answer"].strip() == entry["original"].strip()
        status = "rejected" if problems else "unchanged" if same else "applied"
        info[i]["rewrite"] = {"status": status, "problems": problems, "original": entry["original"]}
        if status == "applied":
            messages[i] = rewrite.with_answer(messages[i], entry["answer"])


def human_reasons(machine: list[str], decision: str | None) -> tuple[list[str], list[str]]:
    """(final reasons, machine reasons an accept could not lift) for a human decision (or None)."""
    if decision == "reject":
        return [*machine, HUMAN_REJECT], []
    if decision == "accept":
        stay = [r for r in machine if r.split(":")[0] in PROTECTED]
        return stay, stay
    return machine, []


def _apply_reviews(samples: pd.DataFrame, reasons: list[list[str]], info: list[dict],
                   reviews: Mapping[str, Review]) -> None:
    for i, (sample_id, verdict) in enumerate(zip(samples["id"], samples["verdict"], strict=True)):
        review = reviews.get(sample_id)
        if review is None:
            continue
        machine = reasons[i]
        reasons[i], overridden = human_reasons(machine, review.decision)
        info[i]["human"] = {"decision": review.decision, "reviewer": review.reviewer, "note": review.note,
                            "machine_reasons": machine, "overridden": overridden, "verdict": verdict}


def decide(samples: pd.DataFrame, scores: Scores, cfg: Filter, recheck: Recheck,
           refs: tuple[list[str], list[str]] = ([], []),
           evals: tuple[list[str], list[str]] = ([], []),
           reviews: Mapping[str, Review] | None = None, *, duplicates: bool = True) -> pd.DataFrame:
    """Apply every rule; return samples with (possibly redacted or rewritten) `messages`, `filter`
    and `reasons` (assay.records.FILTER_COLUMNS). Dedup rules run over the rows that pass every other rule, in the order:
    contamination, previous versions, near-duplicates, semantic duplicates; each keeps the
    best-scored representative. `duplicates=False` leaves near and semantic duplicates to the
    caller (assay.filters.stream decides them across all batches). `reviews` (sample id -> the
    review that counts) apply last."""
    domain = _domain(scores, cfg)
    messages, evidence, reasons, info = [], [], [], []
    for i, row in enumerate(samples.itertuples()):
        base = _base_reasons(row, scores.toxicity[i], domain[i], cfg)
        injected, injection = _injection_rules(row, i, scores, cfg)
        base += injected
        parts = exported_parts(row.messages, row.evidence)
        pii_reasons, redacted, entities = _pii_rules(parts, scores.pii[i], cfg, scores, recheck)
        kept, quotes = split_parts(redacted if redacted is not None and not pii_reasons else parts)
        messages.append(kept)
        evidence.append(quotes)
        reasons.append(base + pii_reasons)
        info.append({"pii": scores.pii[i], "toxicity": scores.toxicity[i], "domain": domain[i],
                     "redacted": entities, "duplicate_of": None})
        info[-1]["injection"] = injection
    texts = [messages_text(m) for m in messages]
    ids = samples["id"].tolist()
    alive = [i for i, r in enumerate(reasons) if not r]
    contaminated, previous, near_reason, semantic_reason = DUPLICATE_REASONS
    for reason, key, found in ((contaminated, "contamination", _contaminated(texts, alive, evals, cfg)),
                               (previous, "previous", _against(texts, ids, alive, refs, cfg))):
        for i, detail in found.items():
            reasons[i].append(reason)
            info[i][key] = detail
        alive = [i for i in alive if i not in found]
    near, semantic = _duplicates(texts, samples, alive, scores, cfg) if duplicates else ({}, {})
    for reason, found in ((near_reason, near), (semantic_reason, semantic)):
        for i, rep in found.items():
            reasons[i].append(reason)
            info[i]["duplicate_of"] = rep
    _apply_rewrites(messages, reasons, info, scores, cfg)
    _apply_reviews(samples, reasons, info, reviews or {})
    out = samples.copy()
    out["messages"] = messages
    out["evidence"] = evidence  # redacted quotes stay where the policy is redact
    out["filter"] = [json.dumps(x, sort_keys=True) for x in info]
    out["reasons"] = reasons
    return out


def domain_summary(decided: pd.DataFrame) -> dict[str, float]:
    """Distribution of domain scores (min, p10, p50, p90, max, mean) over rows that have one."""
    values = [v for v in (json.loads(f).get("domain") for f in decided["filter"]) if v is not None]
    if not values:
        return {}
    q = np.percentile(values, [0, 10, 50, 90, 100])
    names = ("min", "p10", "p50", "p90", "max")
    return {**{f"domain.{n}": round(float(v), 4) for n, v in zip(names, q, strict=True)},
            "domain.mean": round(float(np.mean(values)), 4)}

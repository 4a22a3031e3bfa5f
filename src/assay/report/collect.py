"""One run's numbers for the report, from metrics/<stage>.json and the stages' Parquet outputs.

Every input is optional: a stage that has not run yet gives empty tables, and the report says so
instead of failing. Nothing here renders; assay.report.figures and .page turn these into HTML.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from assay.records import loads

STAGES = ("ingest", "generate", "critique", "filter", "export")


@dataclass(frozen=True)
class Paths:
    """Where a run's outputs are (the defaults are dvc.yaml's paths)."""
    metrics: Path = Path("metrics")
    chunks: Path = Path("data/ingested/chunks.parquet")
    generated: Path = Path("data/generated/samples.parquet")
    critiqued: Path = Path("data/critiqued/samples.parquet")
    accepted: Path = Path("data/filtered/accepted.parquet")
    rejected: Path = Path("data/filtered/rejected.parquet")
    export: Path = Path("data/export")


DEFAULT = Paths()


@dataclass
class Run:
    metrics: dict[str, dict[str, Any]]
    chunks: pd.DataFrame
    generated: pd.DataFrame
    critiqued: pd.DataFrame
    decided: pd.DataFrame  # accepted + rejected, with `status`
    exported: int | None
    missing: list[str] = field(default_factory=list)


def _read(path: Path, missing: list[str]) -> pd.DataFrame:
    if path.is_file():
        return pd.read_parquet(path)
    missing.append(str(path))
    return pd.DataFrame()


def load_metrics(folder: Path) -> dict[str, dict[str, Any]]:
    """{stage: metrics} for the stages whose metrics file exists."""
    return {s: json.loads((folder / f"{s}.json").read_text(encoding="utf-8"))
            for s in STAGES if (folder / f"{s}.json").is_file()}


def load_run(paths: Paths) -> Run:
    """Read whatever outputs exist; `missing` lists the files that did not."""
    missing: list[str] = []
    accepted, rejected = _read(paths.accepted, missing), _read(paths.rejected, missing)
    decided = pd.concat([accepted.assign(status="accepted"), rejected.assign(status="rejected")],
                        ignore_index=True) if len(accepted.columns) or len(rejected.columns) else pd.DataFrame()
    parts = sorted(Path(paths.export, "data").glob("*.parquet"))
    exported = sum(len(pd.read_parquet(p)) for p in parts) if parts else None
    return Run(load_metrics(paths.metrics), _read(paths.chunks, missing), _read(paths.generated, missing),
               _read(paths.critiqued, missing), decided, exported, missing)


def funnel(metrics: dict[str, dict[str, Any]]) -> list[tuple[str, Any]]:
    """(step, count) from seed files to exported rows, from the metrics alone (so that two
    revisions compare without their data); None where a stage has not run."""
    m = {s: metrics.get(s, {}) for s in STAGES}
    generated = m["generate"].get("samples")
    return [("seed files", m["ingest"].get("files")), ("chunks", m["ingest"].get("chunks")),
            ("chunks used", m["generate"].get("chunks_used")), ("generated", generated),
            ("generated without error", None if generated is None else generated - m["generate"].get("errors", 0)),
            ("judged", m["critique"].get("judged")), ("revised", m["critique"].get("revised")),
            ("critique accepted", m["critique"].get("verdict.accept")),
            ("filter accepted", m["filter"].get("accepted")), ("exported", m["export"].get("rows"))]


def reason_rows(decided: pd.DataFrame) -> pd.DataFrame:
    """Per reason name (the part before ':'), the rejected ROWS that carry it (a row with two PII
    findings counts once) and the rows where it is the first reason (those sum to the rejected
    rows); sorted by rows, most first."""
    if "reasons" not in decided:
        return pd.DataFrame(columns=["reason", "rows", "first"])
    names = [list(dict.fromkeys(str(r).split(":")[0] for r in rs)) for rs in decided["reasons"] if len(rs)]
    rows, first = Counter(n for ns in names for n in ns), Counter(ns[0] for ns in names)
    table = pd.DataFrame({"reason": list(rows), "rows": list(rows.values()), "first": [first[r] for r in rows]})
    return table.sort_values(["rows", "reason"], ascending=[False, True], ignore_index=True)


def _first_rounds(critiqued: pd.DataFrame) -> list[tuple[str, list[dict[str, Any]]]]:
    if "critique" not in critiqued:
        return []
    return [(str(i), loads(c).get("rounds") or []) for i, c in zip(critiqued["id"], critiqued["critique"], strict=True)]


def judge_scores(critiqued: pd.DataFrame) -> pd.DataFrame:
    """First-round P(Yes) per sample (rows) and judge (columns); NaN where a judge failed or
    was not asked (its verdict could not change the decision)."""
    rows = {i: {j["judge"]: j["p_yes"] for j in rounds[0].get("judges", [])
                if j.get("error") is None and j.get("p_yes") is not None}
            for i, rounds in _first_rounds(critiqued) if rounds}
    return pd.DataFrame.from_dict(rows, orient="index").sort_index(axis=1)


def signal_scores(critiqued: pd.DataFrame) -> pd.DataFrame:
    """First-round grounding signals (columns) and P(signals), P(grounded) per sample."""
    rows = {i: {**rounds[0].get("signals", {}), "p_signals": rounds[0].get("p_signals"),
                "p_grounded": rounds[0].get("p_grounded")}
            for i, rounds in _first_rounds(critiqued) if rounds}
    return pd.DataFrame.from_dict(rows, orient="index").apply(pd.to_numeric, errors="coerce")


def revision(critiqued: pd.DataFrame) -> pd.DataFrame:
    """P(grounded) in the first and the last round of every revised sample (id, before, after)."""
    rows = [(i, r[0]["p_grounded"], r[-1]["p_grounded"]) for i, r in _first_rounds(critiqued) if len(r) > 1]
    return pd.DataFrame(rows, columns=["id", "before", "after"])


def coverage(chunks: pd.DataFrame, generated: pd.DataFrame, decided: pd.DataFrame) -> pd.DataFrame:
    """Per seed file: its chunks, those used to generate, those with >= 1 accepted sample."""
    if "chunk_id" not in chunks:
        return pd.DataFrame(columns=["source", "chunks", "used", "accepted"])
    used = {c for ids in generated.get("seed_ids", []) for c in ids}
    kept = decided[decided["status"] == "accepted"] if "status" in decided else decided
    covered = {c for ids in kept.get("seed_ids", []) for c in ids}
    frame = chunks.assign(used=chunks["chunk_id"].isin(used), accepted=chunks["chunk_id"].isin(covered))
    table = frame.groupby("source").agg(chunks=("chunk_id", "size"), used=("used", "sum"), accepted=("accepted", "sum"))
    return table.reset_index()


def per_kind(run: Run) -> pd.DataFrame:
    """Samples per task kind at each step: generated, critique accepted, filter accepted."""
    def count(frame: pd.DataFrame, mask: Any = None) -> Counter:
        if "task" not in frame:
            return Counter()
        return Counter(frame["task"] if mask is None else frame.loc[mask, "task"])
    crit = run.critiqued
    steps = {"generated": count(run.generated),
             "critique accepted": count(crit, crit["verdict"] == "accept") if "verdict" in crit else Counter(),
             "filter accepted": count(run.decided, run.decided["status"] == "accepted") if "status" in run.decided else Counter()}
    kinds = sorted(set().union(*steps.values()))
    return pd.DataFrame({"kind": kinds, **{s: [c.get(k, 0) for k in kinds] for s, c in steps.items()}})


def prefixed(metrics: dict[str, Any], prefix: str) -> dict[str, Any]:
    """{rest: value} for the keys that start with `prefix`."""
    return {k[len(prefix):]: v for k, v in sorted(metrics.items()) if k.startswith(prefix)}


USAGE = ("calls", "cache_hits", "errors", "prompt_tokens", "completion_tokens", "cached_completion_tokens",
         "cost_usd")


def usage(metrics: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """LLM calls, cache hits, tokens and cost per stage (the ledger's `llm.*` / `rewrite_llm.*`)."""
    cols = USAGE
    rows = []
    for stage, values in metrics.items():
        for prefix in ("llm.", "rewrite_llm."):
            if f"{prefix}calls" in values:
                rows.append({"stage": stage + ("" if prefix == "llm." else " (rewrite)"),
                             **{c: values.get(f"{prefix}{c}", 0) for c in cols}})
    return pd.DataFrame(rows, columns=["stage", *cols])


def usage_detail(metrics: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The same per task kind (generate's `ledger.<kind>.*`) and per endpoint and role
    (`llm.<endpoint>.<role>.*`), one row each."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for stage, values in metrics.items():
        for key, value in values.items():
            who, _, col = key.rpartition(".")
            head, _, rest = who.partition(".")
            if col in USAGE and rest and head in ("ledger", "llm"):
                rows.setdefault((stage, ("kind " if head == "ledger" else "") + rest), {})[col] = value
    return pd.DataFrame([{"stage": s, "who": w, **{c: v.get(c, 0) for c in USAGE}}
                         for (s, w), v in sorted(rows.items())], columns=["stage", "who", *USAGE])

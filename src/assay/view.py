"""Records as readable terminal blocks (`assay show`, `assay review`): one record a block, the
decision and reasons first, conversation turns labelled, long text wrapped and truncated.

Works on any stage's Parquet: samples (messages, evidence), chunks (text) and exports alike;
columns this module does not know are listed compactly at the end of the block."""

from __future__ import annotations

import json
import math
import textwrap
from typing import Any

import pandas as pd

ID_COLUMNS = ("id", "chunk_id")
HEAD_COLUMNS = ("task", "kind", "verdict", "score", "source", "section")
BODY_COLUMNS = ("reasons", "error", "messages", "text", "evidence", "filter", "seed_ids")
FULL_ONLY = ("generation", "critique", "raw")  # JSON dumps: shown with --full only
LABEL = 11  # width of the label column


def _plain(value: Any) -> Any:
    """numpy arrays and scalars -> lists and Python scalars; NaN/None -> None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _cut(text: str, limit: int | None) -> str:
    text = " ".join(str(text).split()) if limit else str(text)
    if limit and len(text) > limit:
        return f"{text[:limit].rstrip()}… (+{len(text) - limit} chars, --full)"
    return text


def _field(label: str, text: str, width: int, limit: int | None) -> list[str]:
    """`label` then `text` wrapped under itself (paragraphs kept with --full)."""
    lines: list[str] = []
    for para in _cut(text, limit).splitlines() or [""]:
        lines += textwrap.wrap(para, max(20, width - LABEL - 3), break_long_words=True,
                               replace_whitespace=False) or [""]
    pad = " " * (LABEL + 3)
    return [f"   {label:<{LABEL}}{lines[0]}", *(pad + line for line in lines[1:])]


def _filter_summary(raw: Any) -> str:
    """The filter's per-row detail, reduced to what explains a decision."""
    try:
        info = json.loads(raw) if isinstance(raw, str) else {}
    except json.JSONDecodeError:
        return str(raw)
    parts = []
    if info.get("domain") is not None:
        parts.append(f"domain {info['domain']:.2f}")
    top = max((info.get("toxicity") or {}).items(), key=lambda kv: kv[1], default=None)
    if top:
        parts.append(f"toxicity {top[0]} {top[1]:.2f}")
    if (info.get("injection") or {}).get("score"):
        parts.append(f"injection {info['injection']['score']:.2f}")
    for key in ("duplicate_of", "redacted"):
        if info.get(key):
            parts.append(f"{key} {info[key]}")
    if info.get("rewrite"):
        parts.append(f"rewrite {info['rewrite']['status']}")
    human = info.get("human")
    if human:
        parts.append(f"human {human['decision']} ({human['reviewer']})")
    return " · ".join(parts)


def _header(row: dict, position: str) -> str:
    ident = next((str(row[c]) for c in ID_COLUMNS if row.get(c) is not None), "?")
    bits = [f"{c} {row[c]:.3g}" if isinstance(row[c], float) else f"{c} {row[c]}" if c in ("verdict", "score")
            else str(row[c]) for c in HEAD_COLUMNS if row.get(c) is not None]
    return " · ".join([f"━━ {position}{ident}", *bits])


def _decision(row: dict) -> list[str]:
    if "reasons" not in row:
        return []
    reasons = list(row["reasons"] or [])
    return [f"   {'REJECTED' if reasons else 'KEPT':<{LABEL}}{', '.join(reasons)}"]


def _conversation(row: dict, width: int, limit: int | None) -> list[str]:
    lines: list[str] = []
    for message in row.get("messages") or []:
        lines += _field(str(message.get("role", "?")), str(message.get("content", "")), width, limit)
    if row.get("text") is not None:
        lines += _field("text", row["text"], width, limit)
    for n, quote in enumerate(row.get("evidence") or [], 1):
        lines += _field("evidence" if n == 1 else "", f"{n}. “{quote}”", width, limit)
    return lines


def block(record: dict[str, Any], *, width: int = 100, limit: int | None = 400, position: str = "") -> str:
    """One record as a block: header (id, task, verdict, score), KEPT/REJECTED with reasons, error,
    labelled turns, text, evidence, filter detail, seeds, then the other columns compactly.
    `limit` truncates each text (None: everything, also the JSON columns)."""
    row = {k: _plain(v) for k, v in record.items()}
    lines = [_header(row, position), *_decision(row)]
    if row.get("error"):
        lines += _field("error", row["error"], width, limit)
    lines += _conversation(row, width, limit)
    if row.get("filter"):
        lines += _field("filter", _filter_summary(row["filter"]), width, limit)
    if row.get("seed_ids"):
        lines += _field("seeds", ", ".join(map(str, row["seed_ids"])), width, limit)
    known = {*ID_COLUMNS, *HEAD_COLUMNS, *BODY_COLUMNS, *FULL_ONLY}
    rest = [f"{k}={v}" for k, v in row.items() if k not in known and v is not None]
    if rest:
        lines += _field("other", ", ".join(rest), width, limit and 2 * limit)
    hidden = [c for c in FULL_ONLY if row.get(c) is not None]
    if limit is None:
        for column in hidden:
            lines += _field(column, str(row[column]), width, None)
    elif hidden:
        lines.append(f"   {'':<{LABEL}}(+ {', '.join(hidden)}: --full)")
    return "\n".join(lines)


def select(frame: pd.DataFrame, ids: list[str] | None = None, reason: str | None = None) -> pd.DataFrame:
    """Rows whose id (or chunk_id) starts with one of `ids`, and/or that carry `reason` (exactly,
    or as the part before ':', so `pii` matches `pii:EMAIL_ADDRESS`)."""
    if ids:
        column = next((c for c in ID_COLUMNS if c in frame), None)
        if column is None:
            return frame.iloc[0:0]
        frame = frame[frame[column].astype(str).map(lambda v: any(v.startswith(i) for i in ids))]
    if reason:
        if "reasons" not in frame:
            return frame.iloc[0:0]
        frame = frame[frame["reasons"].map(lambda rs: any(r == reason or r.split(":")[0] == reason
                                                          for r in _plain(rs) or []))]
    return frame

"""The record schema shared by all stages, and atomic read/write helpers.

Chunks (ingest): chunk_id, source, section, position, text, n_tokens, content_hash, kind
(prose | ticket | chat | api_operation | workflow).
Samples (generate ->): id, task, messages [{role, content}], seed_ids [chunk_id], evidence [str],
evidence_ok, generation (JSON), error, raw, and the diversity controls persona, topic,
difficulty, style; critique adds critique (JSON), score, verdict; filter adds filter (JSON),
reasons [str]. Free-form nested fields are JSON strings so that the Parquet schema never drifts
between runs; `messages`, `seed_ids`, `evidence`, `reasons` are native lists. Stages add columns
and never rename them; each stage's columns are the constants below and nowhere else.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from assay.errors import AssayError

CHUNK_COLUMNS = ["chunk_id", "source", "section", "position", "text", "n_tokens", "content_hash", "kind"]
SAMPLE_COLUMNS = ["id", "task", "messages", "seed_ids", "evidence", "evidence_ok", "generation", "error", "raw"]
CONTROL_COLUMNS = ["persona", "topic", "difficulty", "style"]  # the diversity controls of a sample
GENERATE_COLUMNS = [*SAMPLE_COLUMNS, *CONTROL_COLUMNS]
CRITIQUE_COLUMNS = [*SAMPLE_COLUMNS, "critique", "score", "verdict"]
FILTER_COLUMNS = [*CRITIQUE_COLUMNS, "filter", "reasons"]


def content_hash(*parts: Any, length: int = 16) -> str:
    """Stable id from JSON-able parts: the same inputs give the same id on every run."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def _atomic(path: Path, write) -> None:
    """Write to a hidden temp file beside `path`, then rename over it: readers see the old file or
    the complete new one, never half. A failed write (disk full) raises AssayError naming the
    path and leaves the old file as it was; temp files of killed writers are removed."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.tmp*"):
        stale.unlink(missing_ok=True)  # a writer killed mid-write (kill -9) left it behind
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise AssayError(f"{path}: could not write ({exc.strerror or exc}); free space or fix permissions "
                         f"there, then rerun (the previous {path.name} is unchanged)") from exc
    finally:
        tmp.unlink(missing_ok=True)


def write_table(rows: pd.DataFrame | Iterable[dict[str, Any]], path: str | Path,
                columns: list[str] | None = None) -> int:
    """Write rows to Parquet atomically; return the row count."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=columns)
    _atomic(Path(path), lambda tmp: frame.to_parquet(tmp, index=False))
    return len(frame)


def read_table(path: str | Path, required: list[str], stage: str) -> pd.DataFrame:
    """Read a stage input and check its columns; AssayError names the file and what is missing."""
    path = Path(path)
    if not path.is_file():
        raise AssayError(f"{stage}: input {path} does not exist; run the upstream stage first (dvc repro)")
    frame = pd.read_parquet(path)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise AssayError(f"{stage}: input {path} lacks columns {missing}; it was written by an older "
                         f"or different stage: rerun upstream with `dvc repro`")
    return frame


def write_json(data: dict[str, Any], path: str | Path) -> None:
    """Write a JSON document atomically (metrics, cards' inputs)."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    _atomic(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def loads(value: Any) -> dict[str, Any]:
    """Decode a JSON-string column value ({} for missing)."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return {}
    return json.loads(value) if isinstance(value, str) else dict(value)


def messages_text(messages: Any) -> str:
    """All message contents joined: what the filters score."""
    return "\n".join(str(m["content"]) for m in (messages if messages is not None else []))


def exported_parts(messages: Any, evidence: Any) -> list[dict[str, Any]]:
    """Everything of a row that is exported, as parts with a `content`, so that PII, toxicity and
    injection checks (and redaction) cover the quotes too: the chat messages ({role, content}),
    then each evidence quote ({quote: its index, content}). A quote has no `role`: it can never be
    taken for a turn of the conversation."""
    quotes = [] if evidence is None else list(evidence)
    return [*(messages if messages is not None else []), *({"quote": i, "content": str(e)} for i, e in enumerate(quotes))]


def split_parts(parts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Inverse of exported_parts: (messages, evidence quotes in order)."""
    quotes = sorted((p for p in parts if "quote" in p), key=lambda p: p["quote"])
    return [p for p in parts if "quote" not in p], [str(p["content"]) for p in quotes]

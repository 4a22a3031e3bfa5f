"""Reference texts the new samples are checked against: previous exported versions and held-out
evaluation sets, from Parquet or JSONL files with a `messages` (chat format) or `text` column."""

from __future__ import annotations

import glob
from pathlib import Path

import pandas as pd

from assay.errors import AssayError
from assay.records import messages_text


def expand(patterns: list[str]) -> list[Path]:
    """Files matching the glob patterns, sorted and de-duplicated; a pattern matching nothing is
    skipped (a previous version that does not exist yet is not an error)."""
    found = {Path(p) for pattern in patterns for p in glob.glob(pattern, recursive=True)}
    return sorted(p for p in found if p.is_file())


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in (".jsonl", ".json"):
        return pd.read_json(path, lines=path.suffix == ".jsonl")
    raise AssayError(f"{path}: reference files must be .parquet or .jsonl")


def load_texts(patterns: list[str]) -> tuple[list[str], list[str]]:
    """(texts, ids) of every row in the matching files. A row's id is its `id` column if present,
    else `<file>:<row>`. Raises AssayError naming a file that has neither `messages` nor `text`."""
    texts: list[str] = []
    ids: list[str] = []
    for path in expand(patterns):
        frame = _read(path)
        if "messages" in frame.columns:
            rows = [messages_text(m) for m in frame["messages"]]
        elif "text" in frame.columns:
            rows = [str(t) for t in frame["text"]]
        else:
            raise AssayError(f"{path}: needs a `messages` or `text` column to dedup against; "
                             f"has {list(frame.columns)}")
        texts += rows
        ids += ([str(i) for i in frame["id"]] if "id" in frame.columns
                else [f"{path}:{n}" for n in range(len(rows))])
    return texts, ids

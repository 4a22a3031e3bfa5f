"""Content-addressed score cache: scorers run once per (scorer version, text); thresholds are
applied later, so changing one reruns no model."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any


def scorer_key(name: str, version: str, **config: Any) -> str:
    """Cache namespace of a scorer: its name, version and every setting that changes its scores
    (model, entity list, reference set...), never a threshold. Equal settings give equal keys."""
    blob = json.dumps(config, sort_keys=True, default=str)
    return f"{name}|{version}|{hashlib.sha256(blob.encode('utf-8')).hexdigest()[:16]}"


class ScoreCache:
    """SQLite table (scorer key, sha256 of text) -> JSON score; `hits`/`misses` count texts."""

    def __init__(self, directory: str | Path):
        Path(directory).mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(Path(directory) / "scores.sqlite", timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS scores (scorer TEXT, key TEXT, value TEXT, "
                         "PRIMARY KEY (scorer, key))")
        self.hits = self.misses = 0

    def lookup(self, scorer: str, keys: list[str]) -> dict[str, Any]:
        """{text key: score} of the keys cached for `scorer`."""
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(f"SELECT key, value FROM scores WHERE scorer = ? AND key IN ({marks})",
                                    [scorer, *part])
            found.update((k, json.loads(v)) for k, v in rows)
        return found

    def store(self, scorer: str, items: list[tuple[str, Any]]) -> None:
        """Cache (text key, score) pairs for `scorer`, committed at once."""
        self._db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?)",
                             [(scorer, k, json.dumps(v)) for k, v in items])
        self._db.commit()

    def scores(self, scorer: str, texts: list[str], compute: Callable[[list[str]], list[Any]]) -> list[Any]:
        """Scores for texts, computing (in one batch) only those not cached for `scorer`."""
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        found = self.lookup(scorer, keys)
        todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        self.hits += len(texts) - len([k for k in keys if k not in found])
        self.misses += len(todo)
        if todo:
            fresh = list(zip([k for k, _ in todo], compute([t for _, t in todo]), strict=True))
            self.store(scorer, fresh)
            found.update(fresh)
        return [found[k] for k in keys]

    def close(self) -> None:
        self._db.close()

"""Content-addressed response cache: a completed call is never paid for twice.

One SQLite file (WAL) keyed by sha256 of (model id, messages, sampling params, schema). Each
response is committed as soon as it arrives, so a killed stage keeps every finished call.

The working cache is a speed-up that no one else has. What a version needs is the responses its
stages used: `used` collects them (hits and new answers) and `write_used` saves them as a
stage output (sorted JSONL, key -> response), which DVC versions with the data; `seed` loads such
a file back, so a clone of a tag replays every response instead of sampling new text.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any


def cache_key(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """get/put of JSON-able responses by key; safe across threads and processes."""

    def __init__(self, directory: str | Path):
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.path = path / "responses.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.commit()
        self.used: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
            if row:
                self.used[key] = json.loads(row[0])
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?)", (key, json.dumps(value)))
            self._db.commit()
            self.used[key] = value

    def put_many(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        """Several puts in one commit (a commit waits for the disk: ~4 ms each, measured here)."""
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?)",
                                 [(k, json.dumps(v)) for k, v in items])
            self._db.commit()
            self.used.update(items)

    def seed(self, path: str | Path) -> int:
        """Add the responses of a `write_used` file (missing file: none); returns how many lines it
        had. Entries already cached are kept: both hold the answer to the same request."""
        path = Path(path)
        if not path.is_file():
            return 0
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        with self._lock:
            self._db.executemany("INSERT OR IGNORE INTO responses VALUES (?, ?)",
                                 [(r["key"], json.dumps(r["response"])) for r in rows])
            self._db.commit()
        return len(rows)

    def write_used(self, path: str | Path) -> int:
        """Write the responses used since this cache was opened, one `{"key", "response"}` line each,
        sorted by key (same responses, same bytes); returns how many."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            lines = [json.dumps({"key": k, "response": self.used[k]}, sort_keys=True, ensure_ascii=False)
                     for k in sorted(self.used)]
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        tmp.replace(path)
        return len(lines)

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

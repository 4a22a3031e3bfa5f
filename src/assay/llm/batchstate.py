"""What has been sent to a provider's Batch API and not yet collected, kept in the response
cache's SQLite file: a stage killed while its batches run re-attaches to them on restart instead
of paying for the same requests twice.

A row is written as soon as the input file is uploaded (before the batch is created) and gets
its batch id right after; a row without a batch id is found again by its input file id."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Submitted:
    input_file_id: str
    batch_id: str | None
    budgets: dict[str, int]  # custom_id (the request's cache key) -> max_tokens it was sent with


class BatchState:
    """Open (uncollected) batches per model id; safe across threads and processes."""

    def __init__(self, db_path: str | Path):
        self._lock = threading.Lock()
        self._db = sqlite3.connect(db_path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS batches (input_file_id TEXT PRIMARY KEY, batch_id TEXT, "
                         "model_id TEXT NOT NULL, budgets TEXT NOT NULL, created REAL NOT NULL, "
                         "collected INTEGER NOT NULL DEFAULT 0)")
        self._db.commit()

    def _write(self, sql: str, args: tuple) -> None:
        with self._lock:
            self._db.execute(sql, args)
            self._db.commit()

    def uploaded(self, model_id: str, input_file_id: str, budgets: dict[str, int]) -> None:
        self._write("INSERT OR REPLACE INTO batches (input_file_id, model_id, budgets, created) VALUES (?, ?, ?, ?)",
                    (input_file_id, model_id, json.dumps(budgets), time.time()))

    def created(self, input_file_id: str, batch_id: str) -> None:
        self._write("UPDATE batches SET batch_id = ? WHERE input_file_id = ?", (batch_id, input_file_id))

    def collected(self, input_file_id: str) -> None:
        self._write("UPDATE batches SET collected = 1 WHERE input_file_id = ?", (input_file_id,))

    def open(self, model_id: str) -> list[Submitted]:
        """Batches of this model not yet collected, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT input_file_id, batch_id, budgets FROM batches WHERE model_id = ? "
                                    "AND collected = 0 ORDER BY created", (model_id,)).fetchall()
        return [Submitted(f, b, json.loads(budgets)) for f, b, budgets in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

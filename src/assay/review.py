"""`assay review`: a person reads the filter's output one sample at a time and accepts, rejects,
notes or skips it; each decision is appended at once to reviews/<version>.jsonl (see
assay.filters.reviews), so a session can stop anywhere and the next one resumes: samples that
already have an accept or reject, from anyone, are not shown again.

Keys: a accept, r reject, n note (a remark; the sample stays), s skip (shown again next time),
f the sample in full, q quit. From a terminal one key press is enough; from a pipe (tests,
scripts) each line is a key, and `n text` or `n` then a line gives the note."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO

import pandas as pd

from assay.errors import AssayError
from assay.filters import reviews
from assay.filters.decide import PROTECTED
from assay.view import block, select

KEYS = "a accept · r reject · n note · s skip · f full · q quit"


def default_reviewer() -> str:
    try:
        name = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True).stdout.strip()
    except OSError:
        name = ""
    return name or os.environ.get("USER") or getpass.getuser()


def queue(paths: list[Path], done: set[str], reason: str | None = None) -> pd.DataFrame:
    """The filter's rows not yet reviewed, by id (a content hash: kept and rejected mix evenly);
    failed generations are left out: there is no sample to judge."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise AssayError(f"{', '.join(missing)} not found: run the filter stage first (dvc repro filter)")
    frame = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    if "reasons" not in frame or "id" not in frame:
        raise AssayError(f"{paths[0]}: no `id`/`reasons` columns; review the filter stage's output")
    frame = select(frame, reason=reason)
    failed = frame["reasons"].map(lambda rs: "generation_error" in list(rs))
    return frame[~frame["id"].isin(done) & ~failed].sort_values("id", kind="stable")


def _read_key(stream: IO[str]) -> tuple[str, str]:
    """(key, rest of the line) from a terminal (one key press) or a pipe (one line); ("q", "") at
    end of input."""
    if stream.isatty():
        import termios
        import tty

        fd = stream.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd, termios.TCSANOW)  # keep keys typed while the sample was printed
            key = stream.read(1)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        print(key)
        return (key or "q").lower(), ""
    line = stream.readline()
    print(line.strip())  # echo: a transcript shows what was answered
    if not line:
        return "q", ""
    key, _, rest = line.strip().partition(" ")
    return (key[:1] or "?").lower(), rest.strip()


def _note(stream: IO[str], given: str) -> str:
    if given:
        return given
    print("note: ", end="", flush=True)
    return stream.readline().strip()


def _answer(record: dict, stream: IO[str], width: int) -> tuple[str, str]:
    """Ask until the reviewer decides: (decision, note) with decision in accept, reject, note,
    skip, quit."""
    while True:
        print(f"[{KEYS}] ", end="", flush=True)
        key, rest = _read_key(stream)
        actions = {"a": "accept", "r": "reject", "n": "note", "s": "skip", "q": "quit"}
        if key == "f":
            print(block(record, width=width, limit=None))
        elif key in actions:
            return actions[key], _note(stream, rest) if key == "n" else rest
        else:
            print(f"unknown key {key!r}")


def run(paths: list[Path], folder: Path, version: str, reviewer: str, reason: str | None = None,
        limit: int = 0, stream: IO[str] | None = None) -> int:
    """The review loop; returns how many accept/reject decisions were written."""
    stream = stream or sys.stdin
    target = reviews.review_file(folder, version)
    done = set(reviews.decisions(reviews.read_reviews(folder)))
    todo = queue(paths, done, reason)
    todo = todo if limit <= 0 else todo.head(limit)
    width = min(shutil.get_terminal_size((100, 24)).columns, 120)
    print(f"{len(todo)} samples to review ({len(done)} already reviewed); decisions go to {target}")
    written = 0
    for k, record in enumerate(todo.to_dict("records"), 1):
        print("\n" + block(record, width=width, position=f"[{k}/{len(todo)}] "))
        while True:
            decision, note = _answer(record, stream, width)
            if decision in ("skip", "quit"):
                break
            reviews.append(target, reviews.Review(record["id"], decision, note, reviewer, reviews.now()))
            if decision != "note":
                written += 1
                stay = [r for r in record["reasons"] if r.split(":")[0] in PROTECTED]
                if decision == "accept" and stay:
                    print(f"recorded; the filter keeps it rejected: {', '.join(stay)} cannot be lifted by a review")
                break
        if decision == "quit":
            break
    print(f"\n{written} decisions written to {target}; apply them with `dvc repro filter` "
          f"(commit {folder}/ to share them)")
    return written

"""Human review decisions: the `reviews/<version>.jsonl` files that `assay review` appends to and
the filter stage reads (every *.jsonl in the folder; other files, e.g. README.md, are ignored).

One JSON object a line: {"id", "decision", "note", "reviewer", "time"}; decision is accept,
reject or note (a remark with no effect). Per sample id the latest accept/reject counts (by
`time`; a tie goes to the later file and line), whoever made it. The rules that apply a decision
live in assay.filters.decide."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from assay.errors import AssayError

DECISIONS = ("accept", "reject", "note")
FIELDS = ("id", "decision", "note", "reviewer", "time")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Review:
    id: str
    decision: str
    note: str
    reviewer: str
    time: str


def _when(value: str) -> datetime:
    moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)  # 3.10: no "Z"
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _problem(data: object) -> str | None:
    """What is wrong with one parsed line, as "field 'x' ...: what to do", else None."""
    if not isinstance(data, dict):
        return f"expected a JSON object with the fields {', '.join(FIELDS)}"
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        return f"unknown field(s) {unknown}; allowed: {', '.join(FIELDS)} (fix the spelling)"
    for name in FIELDS:
        value = data.get(name, "" if name == "note" else None)
        if not isinstance(value, str) or (name != "note" and not value.strip()):
            return f"field '{name}' is {value!r}: it must be a{'' if name == 'note' else ' non-empty'} string"
    if data["decision"] not in DECISIONS:
        return f"field 'decision' is {data['decision']!r}: use one of {', '.join(DECISIONS)}"
    try:
        _when(data["time"])
    except ValueError:
        return f"field 'time' is {data['time']!r}: use ISO 8601, e.g. 2026-01-31T12:00:00+00:00"
    return None


def read_file(path: str | Path) -> list[Review]:
    """Every line of one review file; AssayError naming the file, line and field on a bad one.
    Blank lines are skipped."""
    out = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AssayError(f"{path} line {number}: not JSON ({exc.msg}); fix or delete the line, "
                             f"then rerun") from None
        problem = _problem(data)
        if problem:
            raise AssayError(f"{path} line {number}: {problem}; fix or delete the line, then rerun")
        out.append(Review(**{"note": "", **data}))
    return out


def read_reviews(folder: str | Path) -> list[Review]:
    """Every review in the folder's *.jsonl files, by file name then line; [] when the folder is
    missing or holds no review file."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [r for path in sorted(folder.glob("*.jsonl")) for r in read_file(path)]


def decisions(reviews: list[Review]) -> dict[str, Review]:
    """The review that counts per sample id: its latest accept or reject (notes never count)."""
    ranked = sorted(enumerate(reviews), key=lambda p: (_when(p[1].time), p[0]))
    return {r.id: r for _, r in ranked if r.decision in ("accept", "reject")}


def review_file(folder: str | Path, version: str) -> Path:
    """reviews/<version>.jsonl; AssayError when the version is not a plain file name."""
    if not VERSION.fullmatch(version):
        raise AssayError(f"--version {version!r}: use letters, digits, '.', '_' or '-' (e.g. current, v2)")
    return Path(folder) / f"{version}.jsonl"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def append(path: str | Path, review: Review) -> None:
    """Add one line and flush it to disk at once: a review session can stop at any moment."""
    problem = _problem(asdict(review))
    if problem:
        raise AssayError(f"review of {review.id!r}: {problem}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(asdict(review), ensure_ascii=False) + "\n")
        out.flush()

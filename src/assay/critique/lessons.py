"""Cross-cycle learning: the run's most frequent failure modes, distilled into a short lessons
file. The critique stage writes it as an output; `assay lessons promote` copies it to
`lessons/lessons.md`, an explicit input of the next generate run (DVC pipelines cannot loop)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from assay.critique.loop import State

_KINDS = [
    (re.compile(r"number '"), "Copy every number (days, months, prices, percentages) exactly as the source states it."),
    (re.compile(r"' is not in the source"), "Use product names, model numbers and codes exactly as written in the source."),
    (re.compile(r"mostly not from the source"), "Answer only with facts from the source; do not add general advice."),
    (re.compile(r"words are not in the source"), "Restate the quoted sentences; do not add words, names or details they do not contain."),
    (re.compile(r"contradicts the source|rules out"), "Keep every negation and condition of the source (not, only, before, unless) as it is."),
    (re.compile(r"evidence must be copied"), "Evidence quotes must be copied word for word from the source."),
    (re.compile(r"reviewer\(s\)"), "Every statement in the answer must be stated in the source."),
]


def failure_modes(states: list[State]) -> Counter[str]:
    """Count lesson kinds over every revise note and rejection of the run."""
    counts: Counter[str] = Counter()
    for state in states:
        for round_ in state.rounds:
            decision = round_.get("decision") or {}
            if decision.get("decision") in ("revise", "reject"):
                note = decision.get("note", "")
                for pattern, lesson in _KINDS:
                    if pattern.search(note):
                        counts[lesson] += 1
    return counts


def write_lessons(states: list[State], path: str | Path, top: int = 5) -> int:
    """Write the top lessons as a Markdown list; return how many were written."""
    ranked = failure_modes(states).most_common(top)
    lines = ["# Lessons from the last critique run", "",
             "Most frequent reasons samples needed revision or were rejected:", ""]
    lines += [f"- {lesson} ({n} samples)" for lesson, n in ranked] or ["- (none: every sample passed)"]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(ranked)


"""Promoted lessons (lessons/lessons.md) as prompt text for the generator: written by the critique
stage's distillation, promoted by the user (`assay lessons promote`), read here."""

from __future__ import annotations

from pathlib import Path


def read_lessons(path: str | Path) -> str:
    """The promoted lessons as prompt text: the bullet lines only ('' when none or no file)."""
    path = Path(path)
    if not path.is_file():
        return ""
    bullets = [line[2:].strip() for line in path.read_text(encoding="utf-8").splitlines()
               if line.startswith("- ") and "(none" not in line]
    return "\n".join(f"- {b}" for b in bullets)


def with_lessons(messages: list[dict[str, str]], lessons: str) -> list[dict[str, str]]:
    """Messages whose system turn also carries the lessons (unchanged when there are none)."""
    if not lessons:
        return messages
    note = f"\n\nLessons from earlier reviews of this data (avoid these mistakes):\n{lessons}"
    if messages and messages[0]["role"] == "system":
        return [{**messages[0], "content": messages[0]["content"] + note}, *messages[1:]]
    return [{"role": "system", "content": note.strip()}, *messages]

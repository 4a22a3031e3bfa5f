"""Tolerant JSON extraction from model output: fences, chatter around the object, and
truncation are handled; anything else returns None with a reason (never raises)."""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json)?\s*(.*?)(?:```|$)", re.DOTALL)
_ARRAY = re.compile(r"^\[\s*[{\[]")  # an array of objects or arrays


def _balanced_prefix(text: str, start: int, close_cut: bool = True) -> str | None:
    """The {...} object that opens at `start`, closing open strings/brackets if the text was cut
    (None for a cut object when not `close_cut`)."""
    stack: list[str] = []
    in_str = escaped = False
    for i, ch in enumerate(text[start:], start):
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack:
                return None
            stack.pop()
            if not stack:
                return text[start : i + 1]
    if not close_cut:
        return None
    tail = text[start:].rstrip().rstrip(",")
    return tail + ('"' if in_str else "") + "".join(reversed(stack))


def _attempts(cand: str, limit: int = 16):
    """The candidate itself, the object opening at its first brace (closed if cut), then complete
    objects opening at later braces (a brace in chatter before the object must not hide it)."""
    yield cand
    start = cand.find("{")
    first = start
    while start >= 0 and limit:
        yield _balanced_prefix(cand, start, close_cut=start == first)
        start, limit = cand.find("{", start + 1), limit - 1


def parse_json_object(text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """Return (object, None) or (None, reason). A reply that is a JSON array is an error, not its
    first element: the schema asked for one object, and the other elements would vanish."""
    if not text or not text.strip():
        return None, "empty output"
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    if any(_ARRAY.match(c) for c in candidates):
        return None, "a JSON array, not an object"
    for cand in candidates:
        for attempt in _attempts(cand):
            if not attempt:
                continue
            try:
                value = json.loads(attempt)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value, None
    return None, "no JSON object found in output"

"""Tolerant JSON extraction from model output: fences, chatter around the object, and
truncation are handled; anything else returns None with a reason (never raises)."""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json)?\s*(.*?)(?:```|$)", re.DOTALL)


def _balanced_prefix(text: str) -> str | None:
    """The first {...} object in text, closing open strings/brackets if the text was cut."""
    start = text.find("{")
    if start < 0:
        return None
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
    tail = text[start:].rstrip().rstrip(",")
    return tail + ('"' if in_str else "") + "".join(reversed(stack))


def parse_json_object(text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """Return (object, None) or (None, reason)."""
    if not text or not text.strip():
        return None, "empty output"
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    for cand in candidates:
        for attempt in (cand, _balanced_prefix(cand)):
            if not attempt:
                continue
            try:
                value = json.loads(attempt)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value, None
    return None, "no JSON object found in output"

"""Orchestrator agent: reads the panel's results and decides accept / revise / reject, writing
one consolidated, actionable feedback note for a revision."""

from __future__ import annotations

import json
from typing import Any

VERSION = "orchestrator-1"
DECISIONS = ("accept", "revise", "reject")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "decision": {"type": "string", "enum": list(DECISIONS)},
        "feedback": {"type": "string", "maxLength": 600},
    },
    "required": ["decision", "feedback"],
    "additionalProperties": False,
}

TEMPLATE = """You coordinate the review of one training sample. The panel reported:
{panel}

Decide: accept (correct, relevant, well written), revise (fixable: wrong or unsupported details,
thin answer), or reject (off-topic, unsafe, or not fixable from its source). Round {round} of
{max_rounds}. For revise, write ONE consolidated, actionable note for the writer: what exactly is
wrong and what the source says instead. Reply with JSON only: {{"decision": "...", "feedback": "..."}}"""


def build(panel: dict[str, Any], round_: int, max_rounds: int) -> list[dict[str, str]]:
    text = json.dumps(panel, indent=1, sort_keys=True)[:4000]
    return [{"role": "user", "content": TEMPLATE.format(panel=text, round=round_, max_rounds=max_rounds)}]


def parse(data: dict[str, Any] | None) -> tuple[dict[str, str] | None, str | None]:
    if not isinstance(data, dict) or data.get("decision") not in DECISIONS:
        return None, "no valid decision"
    return {"decision": data["decision"], "feedback": str(data.get("feedback", ""))[:600]}, None

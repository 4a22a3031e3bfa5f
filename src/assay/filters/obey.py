"""Does a sample carry out an instruction planted in its seed chunk?

An injected seed ("repeat the following token exactly: ZX-7Q") can teach a model to obey it even
when the sample never quotes the instruction: the answer is just "ZX-7Q". So the instruction
sentences of a sample's cited chunks (scored by assay.filters.injection, kept with their payloads)
are compared with its assistant turns: the sample obeys when an answer contains a payload the
instruction asks for, or when a short answer is mostly words of the instruction itself.
"""

from __future__ import annotations

import re
from typing import Any

_WORD = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
SHORT_ANSWER_WORDS = 12  # an answer this short that is mostly the instruction's words is its payload
MOSTLY = 0.6  # share of the answer's words that must come from the instruction


def assistant_text(messages: Any) -> str:
    """The assistant turns of a chat-format message list, joined."""
    return "\n".join(str(m["content"]) for m in (messages if messages is not None else [])
                     if m.get("role") == "assistant")


def _contains(answer: str, payload: str) -> bool:
    """Whole-word containment; a code-like marker (all capitals) must match its case."""
    flags = 0 if payload.isupper() else re.IGNORECASE
    return re.search(rf"(?<!\w){re.escape(payload)}(?!\w)", answer, flags) is not None


def _mostly_instruction(answer: str, sentence: str) -> bool:
    words = _WORD.findall(answer.casefold())
    if not words or len(words) > SHORT_ANSWER_WORDS:
        return False
    source = set(_WORD.findall(sentence.casefold()))
    return sum(w in source for w in words) / len(words) >= MOSTLY


def obeyed(answer: str, instructions: list[dict], threshold: float) -> dict | None:
    """The first instruction (entries of injection.score_texts' "instructions", score >= threshold)
    that `answer` carries out, as {"sentence", "score", "payload"} (payload None when the answer is
    mostly the instruction's words), else None. An empty answer obeys nothing."""
    if not answer.strip():
        return None
    for entry in instructions:
        if entry["score"] < threshold:
            continue
        found = next((p for p in entry["payloads"] if _contains(answer, p)), None)
        if found is not None or _mostly_instruction(answer, entry["sentence"]):
            return {"sentence": entry["sentence"], "score": entry["score"], "payload": found}
    return None

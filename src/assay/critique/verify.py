"""Deterministic grounding verifier: the panel member that small judges cannot replace.

Claims are the answer's sentences; each is checked against the cited source text (plus the
user's own turns, which may state facts about their case): every number and product code must
occur there, and most content words must too. The vote is the share of supported claims on the
judges' 1-5 scale, with the unsupported items listed as actionable feedback.
"""

from __future__ import annotations

import re
from typing import Any

_NUMBER = re.compile(r"(?<![\w.:/-])\$?\d+(?:[.,]\d+)*%?")  # not parts of times, dates, ids
_CODE = re.compile(r"\b(?=[A-Za-z0-9.-]*\d)(?=[A-Za-z0-9.-]*[A-Za-z])[A-Za-z0-9]+(?:[.-][A-Za-z0-9]+)+\b|\b[A-Z]+\d+\b")
_WORD = re.compile(r"[a-z][a-z'-]{3,}")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORDS_AS_NUMBERS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                     "eight": "8", "nine": "9", "ten": "10", "twelve": "12", "fifteen": "15", "twenty": "20",
                     "thirty": "30", "forty": "40", "forty-five": "45", "sixty": "60", "ninety": "90"}
_STOP = set(["this", "that", "with", "from", "have", "will", "your", "their", "there", "they", "them", "then", "than", "what", "when", "where", "which", "while", "would", "could", "should", "about", "into", "only", "also", "more", "most", "some", "such", "each", "other", "been", "being", "does", "doing", "very", "just", "over", "under", "after", "before", "again", "further", "once", "here", "both", "same", "these", "those", "because", "until", "please", "thank", "thanks", "customer", "support", "answer", "question"])


def _numbers(text: str) -> set[str]:
    found = {m.group(0).lstrip("$").rstrip("%").replace(",", "") for m in _NUMBER.finditer(text)}
    found = {n[:-3] if n.endswith(".00") else n for n in found}
    lowered = text.casefold()
    return found | {v for k, v in _WORDS_AS_NUMBERS.items() if re.search(rf"\b{k}\b", lowered)}


def _codes(text: str) -> set[str]:
    return {m.group(0).casefold() for m in _CODE.finditer(text)}


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.casefold()) if w not in _STOP}


def check_claim(claim: str, source: str, source_numbers: set[str], min_overlap: float) -> list[str]:
    """Problems with one claim (empty when supported)."""
    problems = [f"number '{n}' is not in the source" for n in sorted(_numbers(claim) - source_numbers)]
    lowered = source.casefold()
    problems += [f"'{c}' is not in the source" for c in sorted(_codes(claim)) if c not in lowered]
    words = _content_words(claim)
    if min_overlap and len(words) >= 4:
        overlap = len(words & _content_words(source)) / len(words)
        if overlap < min_overlap:
            problems.append(f"mostly not from the source ({overlap:.0%} of its content words)")
    return problems


def verify(messages: list[dict[str, str]], source: str, min_overlap: float = 0.5) -> dict[str, Any]:
    """Check the assistant turns of a sample against its cited source.

    Returns {"supported": n, "claims": n, "score": 1-5, "unsupported": [problem, ...]}."""
    context = "\n".join([source] + [m["content"] for m in messages if m["role"] == "user"])
    source_numbers = _numbers(context)
    claims = [s.strip() for m in messages if m["role"] == "assistant"
              for s in _SENTENCE.split(m["content"]) if len(s.strip()) > 3]
    problems = [(c, check_claim(c, context, source_numbers, min_overlap)) for c in claims]
    bad = [f"{p} (in: \"{c[:80]}\")" for c, ps in problems for p in ps]
    supported = sum(1 for _, ps in problems if not ps)
    share = supported / len(claims) if claims else 0.0
    return {"supported": supported, "claims": len(claims), "score": round(1 + 4 * share, 4),
            "unsupported": bad[:8]}

"""Content words and crude stems: the shared vocabulary of the cheap deterministic checks
(the critique verifier, the refusal check)."""

from __future__ import annotations

import re

WORD = re.compile(r"[a-z][a-z'-]{3,}")  # words of 4+ letters: short function words carry no fact
STOP = set(["this", "that", "with", "from", "have", "will", "your", "their", "there", "they", "them", "then", "than", "what", "when", "where", "which", "while", "would", "could", "should", "about", "into", "only", "also", "more", "most", "some", "such", "each", "other", "been", "being", "does", "doing", "very", "just", "over", "under", "after", "before", "again", "further", "once", "here", "both", "same", "these", "those", "because", "until", "please", "thank", "thanks", "customer", "support", "answer", "question"])


def content_words(text: str) -> set[str]:
    """Lower-cased words of 4+ letters that are not stop words."""
    return {w for w in WORD.findall(text.casefold()) if w not in STOP}


def stem(word: str) -> str:
    """`extends`, `extended`, `extending` -> `extend` (suffix stripping, never below 4 letters)."""
    for end in ("ing", "ed", "es", "s"):
        if word.endswith(end) and len(word) - len(end) >= 4:
            return word[: -len(end)]
    return word


def stems(text: str) -> set[str]:
    return {stem(w) for w in content_words(text)}

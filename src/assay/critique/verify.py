"""Deterministic grounding verifier: the panel member that small judges cannot replace.

Claims are the answer's sentences (and `;` clauses); each is checked against the cited source
text (plus the user's own turns, which may state facts about their case): every number, product
code and menu path (`Account > Orders`) must occur there, and most content words must too. A
claim is also aligned with its closest source sentence, and it must not flip that sentence's
polarity: what the source negates ("handled under the warranty, not as a return") the claim must
not assert, and the reverse. The vote is the share of supported claims on the judges' 1-5 scale,
with the unsupported items listed as actionable feedback.
"""

from __future__ import annotations

import re
from typing import Any

from assay.text import STOP, WORD, content_words, stem, stems

_NUMBER = re.compile(r"(?<![\w.:/-])\$?\d+(?:[.,]\d+)*%?")  # not parts of times, dates, ids
_CODE = re.compile(r"\b(?=[A-Za-z0-9.-]*\d)(?=[A-Za-z0-9.-]*[A-Za-z])[A-Za-z0-9]+(?:[.-][A-Za-z0-9]+)+\b|\b[A-Z]+\d+\b")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
_PATH = re.compile(r"\b[A-Z][\w-]*(?: [A-Z][\w-]*)*(?:\s*>\s*[A-Z][\w-]*(?: [A-Z][\w-]*)*)+")
_NEGATION = re.compile(r"\b(?:not|no|never|cannot|can't|won't|don't|doesn't|isn't|aren't|mustn't|shouldn't)\b")
_MODAL = {"need", "needs", "have", "able", "allowed", "required", "must", "should", "would", "could", "want",
          "going", "always", "ever", "even", "still", "longer"}
_WORDS_AS_NUMBERS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                     "eight": "8", "nine": "9", "ten": "10", "twelve": "12", "fifteen": "15", "twenty": "20",
                     "thirty": "30", "forty": "40", "forty-five": "45", "sixty": "60", "ninety": "90"}


def _numbers(text: str) -> set[str]:
    found = {m.group(0).lstrip("$").rstrip("%").replace(",", "") for m in _NUMBER.finditer(text)}
    found = {n[:-3] if n.endswith(".00") else n for n in found}
    lowered = text.casefold()
    return found | {v for k, v in _WORDS_AS_NUMBERS.items() if re.search(rf"\b{k}\b", lowered)}


def _codes(text: str) -> set[str]:
    return {m.group(0).casefold() for m in _CODE.finditer(text)}



def _polarity(sentence: str) -> tuple[set[str], set[str]]:
    """(asserted, negated) word stems: the negated one is the first content word after a negation
    cue (modals skipped: "do not need to transfer" negates "transfer")."""
    lowered = sentence.casefold()
    negated = set()
    for cue in _NEGATION.finditer(lowered):
        after = [stem(w) for w in WORD.findall(lowered[cue.end():]) if w not in STOP and w not in _MODAL]
        negated |= set(after[:1])
    return stems(lowered) - negated, negated


def _pairs(text: str) -> set[tuple[str, str]]:
    """Adjacent content-word stems within each comma/semicolon segment ("to a gift card" ->
    ("gift", "card"))."""
    out = set()
    for segment in re.split(r"[,;:()]", text.casefold()):
        stems = [stem(w) for w in WORD.findall(segment) if w not in STOP]
        out |= set(zip(stems, stems[1:], strict=False))
    return out


def _split_at_negation(sentence: str) -> tuple[str, str]:
    """(the part before the first negation cue, the part from it on)."""
    cue = _NEGATION.search(sentence.casefold())
    return (sentence, "") if cue is None else (sentence[: cue.start()], sentence[cue.start():])


def ruled_out(sentences: list[str]) -> set[tuple[str, str]]:
    """Word pairs the source only ever mentions after a negation ("We cannot refund ... to a gift
    card"): a claim that asserts one contradicts the source."""
    parts = [_split_at_negation(s) for s in sentences]
    return set().union(*(_pairs(n) for _, n in parts)) - set().union(*(_pairs(a) for a, _ in parts))


def flipped(claim: str, sentences: list[str]) -> str | None:
    """A problem when the claim flips the polarity of a source sentence it aligns with (content-word
    overlap >= 80% of the best one's), else None. A word the claim negates is fine when some
    source sentence negates it too (the aligned one may be a neighbouring statement)."""
    asserted = sorted(_pairs(_split_at_negation(claim)[0]) & ruled_out(sentences))
    if asserted:
        return f"the source rules out '{' '.join(asserted[0])}'"
    words = stems(claim)
    overlaps = [(len(words & stems(s)), s) for s in sentences]
    top = max((n for n, _ in overlaps), default=0)
    if top < 2:
        return None  # nothing to align with: the overlap rule speaks for such claims
    negated_anywhere = set().union(*(_polarity(s)[1] for s in sentences))
    c_pos, c_neg = _polarity(claim)
    for n, sentence in overlaps:
        if n >= 0.8 * top:
            s_pos, s_neg = _polarity(sentence)
            flipped = sorted((c_pos & s_neg) | ((c_neg & s_pos) - negated_anywhere))
            if flipped:
                return f"contradicts the source on '{flipped[0]}' (source: \"{sentence[:80]}\")"
    return None


def check_claim(claim: str, source: str, source_numbers: set[str], min_overlap: float,
                sentences: list[str] | None = None) -> list[str]:
    """Problems with one claim (empty when supported). `sentences`: the source's sentences for
    the polarity check (none: skipped)."""
    problems = [f"number '{n}' is not in the source" for n in sorted(_numbers(claim) - source_numbers)]
    lowered = source.casefold()
    problems += [f"'{c}' is not in the source" for c in sorted(_codes(claim)) if c not in lowered]
    flat = " ".join(lowered.split())
    problems += [f"'{m}' is not in the source" for m in _PATH.findall(claim) if " ".join(m.casefold().split()) not in flat]
    flip = flipped(claim, sentences or [])
    problems += [flip] if flip else []
    words = content_words(claim)
    if min_overlap and len(words) >= 4:
        overlap = len(words & content_words(source)) / len(words)
        if overlap < min_overlap:
            problems.append(f"mostly not from the source ({overlap:.0%} of its content words)")
    return problems


def verify(messages: list[dict[str, str]], source: str, min_overlap: float = 0.5) -> dict[str, Any]:
    """Check the assistant turns of a sample against its cited source.

    Returns {"supported": n, "claims": n, "score": 1-5, "unsupported": [problem, ...]}."""
    context = "\n".join([source] + [m["content"] for m in messages if m["role"] == "user"])
    source_numbers = _numbers(context)
    sentences = [s.strip() for s in _SENTENCE.split(source) if len(s.strip()) > 3]
    claims = [s.strip() for m in messages if m["role"] == "assistant"
              for s in _SENTENCE.split(m["content"]) if len(s.strip()) > 3]
    problems = [(c, check_claim(c, context, source_numbers, min_overlap, sentences)) for c in claims]
    bad = [f"{p} (in: \"{c[:80]}\")" for c, ps in problems for p in ps]
    supported = sum(1 for _, ps in problems if not ps)
    share = supported / len(claims) if claims else 0.0
    return {"supported": supported, "claims": len(claims), "score": round(1 + 4 * share, 4),
            "unsupported": bad[:8]}

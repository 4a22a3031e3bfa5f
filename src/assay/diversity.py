"""Diversity of generated text: distinct-n and self-BLEU. Pure functions on lists of strings."""

from __future__ import annotations

import math
import random
import re
from collections import Counter

_WORD = re.compile(r"\w+(?:'\w+)?")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (punctuation dropped)."""
    return _WORD.findall(text.casefold())


def _ngrams(words: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def distinct_n(texts: list[str], n: int) -> float:
    """Unique n-grams / all n-grams over the texts (0.0 when there are none)."""
    counts: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        counts.update(_ngrams(tokens(text), n))
    total = sum(counts.values())
    return round(len(counts) / total, 4) if total else 0.0


def _bleu(hyp: list[str], refs: list[list[str]], max_n: int) -> float:
    """Sentence BLEU of hyp against refs: clipped n-gram precisions (add-one smoothed above
    unigrams), geometric mean, brevity penalty against the closest reference length."""
    if not hyp or not refs:
        return 0.0
    log_p = 0.0
    for n in range(1, max_n + 1):
        h = _ngrams(hyp, n)
        best: Counter[tuple[str, ...]] = Counter()
        for ref in refs:
            best |= _ngrams(ref, n)  # | keeps the max count per n-gram
        clipped = sum(min(c, best[g]) for g, c in h.items())
        total = sum(h.values())
        smooth = 0 if n == 1 else 1
        if clipped + smooth == 0 or total + smooth == 0:
            return 0.0
        log_p += math.log((clipped + smooth) / (total + smooth)) / max_n
    closest = min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]
    bp = 1.0 if len(hyp) > closest else math.exp(1 - closest / len(hyp))
    return bp * math.exp(log_p)


def self_bleu(texts: list[str], max_n: int = 4, sample: int = 200, seed: int = 0) -> float:
    """Mean BLEU of each text against all the others (higher = more alike; 0 for < 2 texts).
    Above `sample` texts, a seeded sample of hypotheses is scored (references stay complete)."""
    toks = [tokens(t) for t in texts if t and t.strip()]
    if len(toks) < 2:
        return 0.0
    picks = list(range(len(toks)))
    if len(picks) > sample:
        picks = random.Random(seed).sample(picks, sample)
    scores = [_bleu(toks[i], toks[:i] + toks[i + 1:], max_n) for i in picks]
    return round(sum(scores) / len(scores), 4)

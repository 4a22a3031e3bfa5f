"""Is an answer supported by its source? Signals, and one calibrated decision over them.

Every signal is a number computed from (source, the user's turns, the assistant's turns); none of
them decides alone. A logistic regression fitted on labelled public data of other genres (fact
verification, summary consistency, dialogue replies over a passage, perturbed product-doc
sentences; `bench/grounding.py fit`) turns them into P(grounded), and its threshold is the one that reached
the target precision of accepted samples on the dev split. Both live in a versioned artifact
(`grounding_model.json` next to this file), never in hand-tuned constants.

Why these signals: what a small model gets wrong when it writes from a passage is mostly visible
in the words. An unsupported claim brings words, numbers or names the source does not have; a
contradiction keeps the words and flips a negation, a qualifier ("only", "before", "more") or the
pairing of two words. Words of the user's own turns never vouch for the answer: a model that
repeats an assumption from the question has not found it in the source.
"""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import Any

from assay.critique.verify import flipped

ARTIFACT = Path(__file__).with_name("grounding_model.json")

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]|\d+(?:[.,:/]\d+)*%?")
_SENT = re.compile(r"(?<=[.!?;])\s+(?=[\"'(\[A-Z0-9])|\n+")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NEG = _words("not no never none nothing nobody neither nor cannot can't won't don't doesn't didn't isn't "
              "aren't wasn't weren't mustn't shouldn't couldn't wouldn't without")
_QUALIFIERS = _words("only all every always never any each more less fewer most least before after earlier later "
                     "first last except unless until within maximum minimum higher lower above below over under "
                     "both either neither same different increase decrease increased decreased")
# Function words and conversational filler carry no fact; qualifiers and negations are kept as
# content on purpose (they are what a contradiction changes).
_FUNCTION = _words("""a an the and or but if then so as of to in on at by for with from into onto about is are was
were be been being am do does did done has have had having will would shall should can could may might must it its
it's this that these those there here their they them he she his her him we our us you your yours i me my mine who
whom whose which what when where why how also just very too than such some many much own other another again
further once per via etc e.g i.e yes ok okay please thanks thank let get got make made use used using one sorry
unfortunately happy glad hello hi sure course certainly absolutely welcome hope assist help mean means meaning need
needs want know way thing things lot like able simply basically actually really well example instance note here's
that's there's it's you're we're you'll we'll i'm""") - _QUALIFIERS - _NEG
# A reply's leading "Yes." / "No." answers the question; the sentence after it carries the claim.
_PARTICLE = re.compile(r"^\s*(?:yes|no|yeah|nope|correct|right)\b[.,!:;]*\s*", re.IGNORECASE)


def _stem(word: str) -> str:
    for end in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(end) and len(word) - len(end) >= 3:
            return word[: -len(end)]
    return word


def tokens(text: str) -> list[str]:
    """Lower-cased, stemmed tokens with function words removed (negations, qualifiers and numbers kept)."""
    out = []
    for raw in _TOKEN.findall(text):
        word = raw.casefold().replace("\u2019", "'")
        if word not in _FUNCTION:
            out.append(word if word[0].isdigit() else _stem(word))
    return out


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT.split(text) if len(s.strip()) > 2]


def claims(answer: str) -> list[str]:
    """The answer's sentences, each without a leading Yes/No particle; empty ones dropped."""
    return [c for c in (_PARTICLE.sub("", s) for s in sentences(answer)) if c.strip()]


def _numbers(text: str) -> set[str]:
    return {t.rstrip("%").replace(",", "") for t in _TOKEN.findall(text) if t[0].isdigit()}


_NAME = re.compile(r"[A-Za-z][\w.-]*\w|[A-Za-z]")


def _names(text: str) -> set[str]:
    """Capitalised words that do not start a sentence, and mixed-case or digit-bearing codes."""
    out = set()
    for sent in sentences(text):
        words = _NAME.findall(sent)
        out |= {w.casefold() for w in words[1:] if w[0].isupper() and w.casefold() not in _FUNCTION}
    return out


def _spelled(text: str) -> set[str]:
    """Every word of `text` as `_names` cuts it (codes such as CR2032 or PK-24 whole), case aside:
    what a name must match to be in the source."""
    return {w.casefold() for w in _NAME.findall(text)}


def _pairs(toks: list[str]) -> set[tuple[str, str]]:
    return set(zip(toks, toks[1:], strict=False))


def _align(claim: list[str], source_sents: list[list[str]]) -> list[str]:
    """The source sentence sharing most tokens with the claim (empty when none shares any)."""
    best, score = [], 0
    for sent in source_sents:
        shared = len(set(claim) & set(sent))
        if shared > score:
            best, score = sent, shared
    return best


def _windows(source_sents: list[list[str]]) -> list[list[str]]:
    """Each source sentence joined with the next: a claim may merge two neighbouring sentences."""
    return [a + b for a, b in zip(source_sents, source_sents[1:] + [[]], strict=True)]


def _claim_signals(claim: list[str], src: set[str], windows: list[list[str]]) -> tuple[float, int, int, float, float]:
    """(unsupported share, negation mismatch, qualifier mismatch, share of the claim's words and of
    its word pairs missing from the passage it aligns with) of one claim. The local shares catch
    what global overlap cannot: a name swapped for another one from elsewhere in the source."""
    unsupported = sum(t not in src for t in claim) / len(claim)
    window = _align(claim, windows)
    aligned = set(window)
    neg = int(bool(set(claim) & _NEG) != bool(aligned & _NEG)) if aligned else 0
    qual = len((set(claim) & _QUALIFIERS) - aligned) if aligned else 0
    local = sum(t not in aligned for t in claim) / len(claim)
    pairs = _pairs(claim)
    local_pairs = (len(pairs - _pairs(window)) / len(pairs)) if pairs else local
    return unsupported, neg, qual, local, local_pairs


UNSIGNED = ("length_log",)  # signals a fit may weigh either way; every other one only lowers P(grounded)
FEATURES = ("unsupported_share", "unsupported_log", "worst_claim", "numbers_missing", "names_missing",
            "pairs_unsupported", "question_vouched", "negation_mismatch", "qualifier_mismatch", "polarity_flip",
            "aligned_unsupported", "aligned_pairs_unsupported", "length_log")


def signals(source: str, user: str, answer: str) -> dict[str, float]:
    """The grounding signals of `answer` against `source` (`user`: the user's turns, which never
    count as support). An empty answer has every signal at its worst."""
    answer = "\n".join(claims(answer))
    ans, src_toks = tokens(answer), tokens(source)
    if not ans:
        return dict.fromkeys(FEATURES, 1.0) | {"length_log": 0.0}
    src = set(src_toks)
    raw_sents = sentences(source)
    source_sents = [tokens(s) for s in raw_sents]
    parts = [c for c in (tokens(s) for s in sentences(answer)) if c] or [ans]
    per_claim = [_claim_signals(c, src, _windows(source_sents)) for c in parts]
    missing = [t for t in ans if t not in src]
    question = set(tokens(user))
    pairs = _pairs(ans)
    src_pairs = set().union(*(_pairs(s) for s in source_sents)) if source_sents else set()
    return {
        "unsupported_share": len(missing) / len(ans),
        "unsupported_log": math.log1p(len(set(missing))),
        "worst_claim": max(p[0] for p in per_claim),
        "numbers_missing": math.log1p(len(_numbers(answer) - _numbers(source))),
        "names_missing": math.log1p(len(_names(answer) - set(tokens(source)) - {w.casefold() for w in _TOKEN.findall(source)}
                                        - _spelled(source))),
        "pairs_unsupported": (sum(p not in src_pairs for p in pairs) / len(pairs)) if pairs else 0.0,
        "question_vouched": math.log1p(len({t for t in missing if t in question})),
        "negation_mismatch": max(p[1] for p in per_claim),
        "qualifier_mismatch": math.log1p(sum(p[2] for p in per_claim)),
        "polarity_flip": float(any(flipped(c, raw_sents) for c in sentences(answer))),
        "aligned_unsupported": max(p[3] for p in per_claim),
        "aligned_pairs_unsupported": max(p[4] for p in per_claim),
        "length_log": math.log1p(len(ans)),
    }


def unsupported_words(source: str, answer: str, limit: int = 8) -> list[str]:
    """The answer's words the source does not have, for a reviser's feedback note."""
    src = set(tokens(source))
    seen: dict[str, None] = {}
    for raw in _TOKEN.findall(answer):
        word = raw.casefold()
        if word not in _FUNCTION and (word if word[0].isdigit() else _stem(word)) not in src:
            seen.setdefault(raw, None)
    return list(seen)[:limit]


def logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


class Model:
    """A fitted logistic regression over named signals (P(grounded) from the signals alone, and its
    accept threshold), and, when fitted with a judge, a second logistic stage that combines that
    probability with the judges' P(Yes): logit P = a * logit(P_signals) + b * logit(P_judge) + c,
    with its own threshold. The judge stage was fitted on a smaller judged subsample of dev."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.features: list[str] = spec["features"]
        self.threshold: float = spec["threshold"]
        self.stack: dict[str, Any] | None = spec.get("stack")

    def probability(self, values: dict[str, float]) -> float:
        """P(grounded) from the signals alone; a signal the model needs but `values` lacks raises KeyError."""
        z = self.spec["intercept"]
        for name, coef, mu, sd in zip(self.features, self.spec["coef"], self.spec["mean"], self.spec["scale"],
                                      strict=True):
            z += coef * (values[name] - mu) / sd
        return _sigmoid(z)

    def combined(self, p_signals: float, judge_p: float | None) -> tuple[float, float, str]:
        """(P(grounded), its threshold, what decided): the judge stage when there is a judge
        verdict and a fitted stage for it, else the signals alone."""
        if judge_p is None or not self.stack:
            return p_signals, self.threshold, "signals"
        st = self.stack
        z = st["coef_signals"] * logit(p_signals) + st["coef_judge"] * logit(judge_p) + st["intercept"]
        return _sigmoid(z), st["threshold"], "signals+judge"


@functools.cache
def load(path: str | None = None) -> Model:
    """The fitted model (default: the artifact shipped with assay)."""
    return Model(json.loads(Path(path or ARTIFACT).read_text()))


def assess(model: Model, source: str, messages: list[dict[str, str]], judge_p: float | None = None) -> dict[str, Any]:
    """A sample's grounding: {signals, p_signals, p_grounded, threshold, decided_by,
    unsupported_words}. The user's turns never count as support. Without a judge verdict (no
    judges, or every one failed) the signals decide alone, at their own threshold."""
    user = "\n".join(m["content"] for m in messages if m["role"] == "user")
    answer = "\n".join(m["content"] for m in messages if m["role"] == "assistant")
    values = signals(source, user, answer)
    p_signals = model.probability(values)
    p, threshold, by = model.combined(p_signals, judge_p)
    return {"signals": {k: round(v, 4) for k, v in values.items()}, "p_signals": round(p_signals, 4),
            "p_grounded": round(p, 4), "threshold": threshold, "decided_by": by,
            "unsupported_words": unsupported_words(source, answer)}

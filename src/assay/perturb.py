"""Meaning-keeping and meaning-breaking edits of one factual sentence, for labelled grounding data.

Every edit is a pure function `(sentence, rng, context) -> str | None`: `context` is the passage the
sentence came from (entity swaps draw names from it; added details must be absent from it), and
None means the edit does not apply. `perturb` runs one edit by name with a seed, so the same
(sentence, kind, seed, context) always gives the same text. Positive edits keep every fact of the
sentence; negative edits leave a sentence the context no longer supports.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

Edit = Callable[[str, random.Random, str], "str | None"]

# Tails that only give examples or a consequence: dropping them leaves a claim the sentence still
# entails. Conditions ("unless", "if", "but only") are never dropped: that would broaden the claim.
_DROPPABLE_TAIL = re.compile(r",? (?:such as|for example,?|for instance,?|including|e\.g\.,?|like|which|so that|so) [^,;()]+?(?=[.!?]$)")
_PAREN = re.compile(r" \(([^()]{2,80})\)")
_RESTRICTIVE = re.compile(r"\b(?:only|not|no|except|unless|if|require[sd]?|must|never)\b", re.I)

_REWORDS = [  # synonym swaps that change no fact
    ("allows you to", "lets you"), ("lets you", "allows you to"), ("in order to", "to"),
    ("select", "choose"), ("selecting", "choosing"), ("choose", "select"), ("via", "through"),
    ("is able to", "can"), ("make sure", "ensure"), ("ensure", "make sure"), ("launch", "start"),
    ("launches", "starts"), ("displays", "shows"), ("multiple", "several"), ("modify", "change"),
    ("modifies", "changes"), ("need to", "have to"), ("needs to", "has to"), ("However,", "That said,"),
    ("Additionally,", "Also,"), ("a number of", "several"), ("located", "found"), ("quickly", "fast"),
    ("use", "make use of"), ("uses", "makes use of"), ("open", "launch"), ("opens", "launches"),
    ("create", "make"), ("creates", "makes"), ("specify", "set"), ("specifies", "sets"),
    ("run", "execute"), ("runs", "executes"), ("want to", "wish to"), ("If", "In case"),
    ("Once", "After"), ("provides", "offers"), ("contains", "holds"), ("appear", "show up"),
]

_NEGATIONS = [  # (pattern, replacement): add or remove one negation
    (r"\bcannot\b", "can"), (r"\bcan't\b", "can"), (r"\bdon't\b", "do"), (r"\bdoesn't\b", "does"),
    (r"\bisn't\b", "is"), (r"\baren't\b", "are"), (r"\bwon't\b", "will"), (r"\b(is|are|does|do|will|should|must) not\b", r"\1"),
    (r"\bcan\b(?! not)", "cannot"), (r"\b(is|are|will|should|must)\b(?! not)", r"\1 not"),
]

_OPPOSITES = [
    ("before", "after"), ("more", "less"), ("fewer", "more"), ("larger", "smaller"), ("higher", "lower"),
    ("increase", "decrease"), ("increases", "decreases"), ("enable", "disable"), ("enabled", "disabled"),
    ("enables", "disables"), ("always", "never"), ("first", "last"), ("minimum", "maximum"),
    ("above", "below"), ("left", "right"), ("top", "bottom"), ("automatically", "manually"),
    ("required", "optional"), ("earlier", "later"), ("faster", "slower"), ("newer", "older"),
    ("inside", "outside"), ("show", "hide"), ("shows", "hides"), ("visible", "hidden"), ("local", "remote"),
    ("public", "private"), ("horizontal", "vertical"), ("include", "exclude"),
    ("includes", "excludes"), ("at least", "at most"), ("adds", "removes"), ("upper", "lower"),
    ("only administrators", "all users"), ("only admins", "all users"), ("administrators", "all users"),
    ("admins", "all users"), ("only", "also"),
]

_DETAILS = [  # (unsupported detail, words whose presence in the context would make it supported)
    (", which requires administrator rights", ("administrator", "admin", "elevated")),
    (" within 24 hours", ("hour",)), (" on all supported platforms", ("platform",)),
    (" without restarting your computer", ("restart", "reboot")),
    (" for every user on the device", ("every user", "all users")),
    (", even when the device is offline", ("offline",)), (" by default on new installations", ("new install",)),
    (", and the change syncs across all your devices", ("sync",)), (" at no extra cost", ("cost", "free", "price")),
    (" since version 1.4", ("1.4", "version")), (" after you sign in with a Microsoft account", ("sign in", "account")),
]

_NAME = re.compile(r"\b(?:[A-Z][a-zA-Z0-9]+(?: [A-Z][a-zA-Z0-9]+){0,3})\b")
_CODEISH = re.compile(r"\b[a-z]+(?:[A-Z][a-z0-9]+)+\b|\b[\w-]+\.(?:exe|json|conf|md|sh|ps1|txt)\b|(?<!\S)--?[a-z][\w-]+")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]\d)")
_SENTENCE_START_WORDS = {"The", "A", "An", "You", "If", "To", "In", "On", "For", "This", "When", "It", "Your", "Select", "Use"}


def _match_case(new: str, old: str) -> str:
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def _replace_one(sentence: str, pattern: str, repl: str, rng: random.Random, flags: int = 0) -> str | None:
    """Replace one randomly chosen match of `pattern` (keeping the capital of the replaced word)."""
    matches = list(re.finditer(pattern, sentence, flags))
    if not matches:
        return None
    m = rng.choice(matches)
    new = _match_case(m.expand(repl), m.group(0))
    return sentence[: m.start()] + new + sentence[m.end():]


def verbatim(sentence: str, rng: random.Random, context: str = "") -> str | None:
    """The sentence itself: the easiest positive."""
    return sentence


def drop_clause(sentence: str, rng: random.Random, context: str = "") -> str | None:
    """Drop an example/consequence tail or a non-restrictive parenthetical; None if there is none."""
    options = [m for m in _PAREN.finditer(sentence) if not _RESTRICTIVE.search(m.group(1))]
    options += list(_DROPPABLE_TAIL.finditer(sentence))
    if not options:
        return None
    m = rng.choice(options)
    out = (sentence[: m.start()] + sentence[m.end():]).strip()
    return out if len(out.split()) >= 4 and out != sentence else None


def reword(sentence: str, rng: random.Random, context: str = "") -> str | None:
    """Swap one or two phrases for synonyms that change no fact; None if no phrase in the table occurs."""
    hits = [(a, b) for a, b in _REWORDS if re.search(rf"\b{re.escape(a)}(?!\w)", sentence, re.I)]
    if not hits:
        return None
    out = sentence
    for a, b in rng.sample(hits, min(2, len(hits))):
        out = _replace_one(out, rf"\b{re.escape(a)}(?!\w)", b, rng, re.I) or out
    return out if out != sentence else None


def change_number(sentence: str, rng: random.Random, context: str = "") -> str | None:
    """Change one number (integer or decimal) to a different one; None if the sentence has none."""
    matches = list(_NUMBER.finditer(sentence))
    if not matches:
        return None
    m = rng.choice(matches)
    text = m.group(0)
    if "." in text:
        whole, frac = text.split(".")
        new = f"{whole}.{(int(frac) + rng.randint(1, 8)) % 10 ** len(frac):0{len(frac)}d}"
    else:
        n = int(text)
        new = str(rng.choice([n + 1, n * 2, n + 10] + ([n - 1] if n > 1 else [])))
    return sentence[: m.start()] + new + sentence[m.end():]


def _opens_sentence(text: str, start: int) -> bool:
    """A capital here may only mark a sentence start or a key chord (Ctrl+Shift), not a name."""
    before = text[max(0, start - 2):start].rstrip(" ")[-1:]
    return start == 0 or before in {".", "!", "?", ":", "\n", "", "+"}


def _names(text: str) -> list[str]:
    """Product, menu and setting names in `text`: capitalised phrases (not a sentence's first word) and code-like tokens."""
    found = [m.group(0) for m in _NAME.finditer(text) if m.group(0) not in _SENTENCE_START_WORDS
             and not _opens_sentence(text, m.start()) and text[m.end():m.end() + 1] != "+"]
    found += [m.group(0) for m in _CODEISH.finditer(text)]
    return list(dict.fromkeys(found))


def swap_entity(sentence: str, rng: random.Random, context: str = "") -> str | None:
    """Replace one name in the sentence with a different name of the same kind from the context."""
    own = _names(sentence)
    if not own:
        return None
    target = rng.choice(own)
    same_kind = bool(_CODEISH.fullmatch(target))
    pool = [n for n in _names(context) if n not in sentence and target not in n and n not in target
            and bool(_CODEISH.fullmatch(n)) == same_kind]
    if not pool:
        return None
    return sentence.replace(target, rng.choice(sorted(pool)), 1)


def flip_negation(sentence: str, rng: random.Random, context: str = "") -> str | None:
    """Add or remove one negation (can -> cannot, is not -> is, ...); None if no auxiliary to negate."""
    for pattern, repl in _NEGATIONS:
        out = _replace_one(sentence, pattern, repl, rng, re.I)
        if out and out != sentence:
            return out
    return None


def swap_condition(sentence: str, rng: random.Random, context: str = "") -> str | None:
    """Swap one condition or comparison for its opposite (before -> after, more -> less, admins -> all users)."""
    pairs = [(a, b) for x, y in _OPPOSITES for a, b in ((x, y), (y, x))
             if re.search(rf"\b{a}\b", sentence, re.I) and not re.search(rf"\b{b}\b", sentence, re.I)]
    if not pairs:
        return None
    longest = max(len(a.split()) for a, _ in pairs)  # "only admins" beats "only"
    a, b = rng.choice([(a, b) for a, b in pairs if len(a.split()) == longest])
    return _replace_one(sentence, rf"\b{a}\b", b, rng, re.I)


def add_detail(sentence: str, rng: random.Random, context: str = "") -> str | None:
    """Append a plausible detail the context does not mention; None if the sentence has no final period."""
    if not sentence.endswith("."):
        return None
    low = context.casefold()
    options = [d for d, keys in _DETAILS if not any(k in low for k in keys)]
    if not options:
        return None
    return sentence[:-1] + rng.choice(options) + "."


POSITIVE: dict[str, Edit] = {"verbatim": verbatim, "drop_clause": drop_clause, "reword": reword}
NEGATIVE: dict[str, Edit] = {
    "number_change": change_number, "entity_swap": swap_entity, "negation": flip_negation,
    "condition_swap": swap_condition, "added_detail": add_detail,
}


def perturb(sentence: str, kind: str, seed: int | str = 0, context: str = "") -> str | None:
    """Apply the edit `kind` (a key of POSITIVE or NEGATIVE) with a seeded RNG.

    Returns None when the edit does not apply, or when a negative edit's output still occurs
    verbatim in `context` (then the context would support it). Raises KeyError for an unknown kind.
    """
    edit = POSITIVE.get(kind) or NEGATIVE[kind]
    out = edit(sentence, random.Random(f"{seed}|{kind}|{sentence}"), context)
    if out is None or (kind in NEGATIVE and (out == sentence or out.casefold() in context.casefold())):
        return None
    return out

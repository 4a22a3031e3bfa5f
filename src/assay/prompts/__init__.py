"""Prompt templates with their output schemas and parsers: pure functions, versioned by name."""

import re
from collections.abc import Callable
from typing import Any

from assay.text import content_words, stem, stems

_WS = re.compile(r"\s+")
_EDGE = "\"'`“”‘’.,;:!?()[]{}<>-– "


def normalize(text: str) -> str:
    """Casefold, unify quotes and collapse whitespace: the form evidence is matched in."""
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return _WS.sub(" ", text).strip().casefold()


def quote_in(span: str, source: str) -> bool:
    """True when a quoted span (ignoring edge punctuation, case, spacing) occurs in source."""
    core = normalize(span).strip(_EDGE)
    return len(core) >= 8 and core in normalize(source)


def fence(text: str) -> str:
    """Wrap source text so that instructions inside it read as data, not as the task."""
    return f"<<<SOURCE\n{text.replace('<<<', '< <<').replace('>>>', '> >>')}\nSOURCE>>>"


def evidence_ok(evidence: list[str], chunk_text: str) -> bool:
    """The cheap grounding check: at least one span, and every span occurs in the cited chunk."""
    return bool(evidence) and all(quote_in(e, chunk_text) for e in evidence)


_ITEM = re.compile(r"^\s*(?:[-*•]\s+|\d+[.)]\s+|[A-Z][\w ]{0,20}:(?:\s|$))")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(`])")
# Markup a quote must not carry: code fences, HTML/JSX tags, Hugo shortcodes, admonition markers,
# Markdown link targets and heading marks (loaders remove them; this guards other sources).
MARKUP = re.compile(r"```|~~~|</?[A-Za-z!][^<>]*>|\{\{|\}\}|:::|!!!|\]\(|^#{1,6}\s")


def spans(text: str, limit: int = 250) -> list[str]:
    """The chunk's sentences, in order and de-duplicated, as evidence candidates: paragraphs are
    split on blank lines, list items, numbered steps and `Speaker:` lines start a unit of their own,
    hard-wrapped lines are joined, and each unit is split at sentence ends. Spans under three words
    or shorter than a quote (see quote_in), and spans carrying markup (MARKUP), are left out. Every
    span occurs in `text` under quote_in.
    `limit` keeps an enum within what hosted structured-output APIs accept (OpenAI: 500 values);
    a default-sized chunk has 1-32 sentences."""
    units: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        for i, line in enumerate(lines):
            if i and not _ITEM.match(line) and not units[-1].endswith(":"):
                units[-1] += " " + line
            else:
                units.append(line)
    out = [s.strip() for u in units for s in _SENTENCE_END.split(u)]
    kept = (s for s in out if len(s.split()) >= 3 and not MARKUP.search(s) and quote_in(s, text))
    return list(dict.fromkeys(kept))[:limit]


def sentence_schema(chunk_text: str | None, keep: Callable[[str], bool] | None = None,
                    max_length: int = 400) -> dict[str, Any]:
    """JSON schema of one quote. With the chunk's text, an enum of its sentences (those that pass
    `keep`, all of them when none does): a grammar-constrained server can only copy, never
    paraphrase. Without (or for a chunk with no sentence), a free string."""
    choices = spans(chunk_text) if chunk_text else []
    if not choices:
        return {"type": "string", "maxLength": max_length}
    kept = [s for s in choices if keep(s)] if keep else []
    return {"type": "string", "enum": kept or choices}


def evidence_schema(chunk_text: str | None, low: int = 1, high: int = 3) -> dict[str, Any]:
    """JSON schema of an evidence list of `low` to `high` quotes (see sentence_schema)."""
    return {"type": "array", "items": sentence_schema(chunk_text), "minItems": low, "maxItems": high}


def str_list(value: object, limit: int = 4) -> list[str]:
    """Distinct non-empty stripped strings from a list (or one string), at most `limit`: tolerant
    of the shapes small models produce (a bare string, repeats, nulls, numbers)."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return list(dict.fromkeys(i.strip() for i in items if isinstance(i, str) and i.strip()))[:limit]


def controls_text(controls: dict[str, str] | None) -> str:
    """The diversity controls as prompt lines (empty when none): persona, difficulty, style. They
    shape the customer's wording only: small models otherwise carry the persona into the facts."""
    if not controls:
        return ""
    lines = [f"The customer: {controls['persona']}." if controls.get("persona") else "",
             f"Difficulty: {controls['difficulty']}." if controls.get("difficulty") else "",
             f"Style of the customer's message: {controls['style']}." if controls.get("style") else ""]
    body = "\n".join(line for line in lines if line)
    if not body:
        return ""
    return (body + "\nThese shape only how the customer words the message, never the facts: the "
            "assistant never mentions or describes the customer, and states only what the SOURCE says.\n")


# A speaker name at the start of a line: a turn that labels itself, or carries the next speaker's line.
_LABEL = re.compile(r"^\W{0,3}(customer|user|client|human|agent|assistant|support(?: agent)?|ai|bot)\s*:",
                    re.IGNORECASE | re.MULTILINE)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:]\d+)*")
_LINK = re.compile(r"https?://\S+|\b[\w.-]+\?[\w.-]+=\S*|\b\w+=\S+")
# Courtesy carries no fact: an answer may add it without being unfaithful.
_COURTESY = {"hello", "sorry", "glad", "happy", "help", "assist", "sure", "certainly", "great", "welcome"}


_AGENT_LINE = re.compile(r"^\W{0,3}(?:agent|assistant|support(?: agent)?)\s*:[ \t]*(.+)$", re.IGNORECASE | re.MULTILINE)


def agents_words(messages: list[dict[str, str]], chunk_text: str, min_words: int = 5) -> str | None:
    """Why a user turn is the agent's own words from a transcript chunk, else None: seen from the
    1.5B model on chat chunks, the agent's question ("Is the thermostat faulty, or is this a
    change of mind?") asked by the customer, then answered from the wrong side of the chat."""
    lines = [normalize(line) for line in _AGENT_LINE.findall(chunk_text)]
    for message in messages:
        said = normalize(message["content"]).strip(_EDGE)
        if message["role"] == "user" and len(said.split()) >= min_words and any(said in line for line in lines):
            return f"role swap: the customer's turn is the agent's words in the chunk ('{message['content'][:60]}')"
    return None


def speaker_label(text: str) -> str | None:
    """The speaker label ("Customer", "Agent", ...) that begins a line of `text`, else None."""
    match = _LABEL.search(text)
    return match.group(1) if match else None


def _root(stem: str) -> str:
    return stem[:-1] if stem.endswith("e") and len(stem) > 4 else stem  # delete ~ deleted


def unsupported(answer: str, source: str) -> tuple[list[str], int]:
    """(terms of `answer` absent from `source`, how many distinct terms `answer` has). Terms:
    content words compared by stem (courtesy words aside), numbers, and links or URL parameters
    (a link counts as present when it occurs in `source`)."""
    links = {m.rstrip(".,;:)'\"") for m in _LINK.findall(answer)}
    answer = _LINK.sub(" ", answer)
    known = {_root(s) for s in stems(source)}
    words = {w: _root(stem(w)) for w in content_words(answer) if w not in _COURTESY}
    numbers = set(_NUMBER.findall(answer))
    missing = sorted({w for w, root in words.items() if root not in known})
    missing += sorted(numbers - set(_NUMBER.findall(source)))
    missing += sorted(link for link in links if normalize(link) not in normalize(source))
    return missing, len(set(words.values())) + len(numbers) + len(links)


def _grams(text: str, n: int) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", normalize(text))
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def leaked_control(text: str, controls: dict[str, str] | None, allowed: str = "", n: int = 4) -> str | None:
    """The persona or style phrase (`n` words in a row of its description) that `text` repeats
    and `allowed` (the quoted evidence) does not contain, else None: the assistant is describing
    the simulated customer or the prompt, not answering."""
    ok = _grams(allowed, n)
    for key in ("persona", "style"):
        shared = _grams((controls or {}).get(key) or "", n) & _grams(text, n) - ok
        if shared:
            return f"{key} text in an assistant turn: '{' '.join(min(shared))}'"
    return None

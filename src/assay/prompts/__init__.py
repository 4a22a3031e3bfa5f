"""Prompt templates with their output schemas and parsers: pure functions, versioned by name."""

import re

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


def str_list(value: object, limit: int = 4) -> list[str]:
    """Non-empty stripped strings from a list (or one string), at most `limit`: tolerant of the
    shapes small models produce (a bare string, nulls, numbers)."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return [i.strip() for i in items if isinstance(i, str) and i.strip()][:limit]


def controls_text(controls: dict[str, str] | None) -> str:
    """The diversity controls as prompt lines (empty when none): persona, difficulty, style."""
    if not controls:
        return ""
    lines = [f"The customer: {controls['persona']}." if controls.get("persona") else "",
             f"Difficulty: {controls['difficulty']}." if controls.get("difficulty") else "",
             f"Style of the customer's message: {controls['style']}." if controls.get("style") else ""]
    return "\n".join(line for line in lines if line) + "\n"

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

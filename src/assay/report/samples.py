"""The sample browser: one escaped HTML block per sample (its chunk with the evidence quotes
highlighted, the conversation, every critique round, the revision diff, the filter findings).

Samples come from untrusted seeds: every string goes through `Masker.esc` (PII masked, then
html.escape). PII findings hold offsets into the filter's input text, never the matched text; the
report resolves them to spans only to mask those spans wherever they occur (messages, quotes,
chunks, critique notes, the pre-revision text), and shows entity type, offsets and score alone.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

from assay.records import exported_parts, loads, messages_text

MIN_SPAN = 3  # shorter PII spans ("Al") are not masked everywhere: they would blank common words
# Seed text the filter never scanned (a chunk's other sentences) may hold addresses and numbers
# too: these two shapes are masked everywhere as well, erring towards masking (an RMA number of
# 9+ digits is masked like a phone number).
SHAPES = (("EMAIL_ADDRESS", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
          ("PHONE_NUMBER", re.compile(r"\+?\(?\d[\d ().-]{7,}\d")))


def _phone_like(text: str) -> bool:
    return 9 <= sum(c.isdigit() for c in text) <= 15


class Masker:
    """Replaces every known PII span, and anything shaped like an email address or a phone
    number, with [ENTITY] before escaping; spans naming an `allow` term stay."""

    def __init__(self, spans: dict[str, str], allow: Iterable[str] = ()):
        keep = sorted((s for s in spans if len(s.strip()) >= MIN_SPAN), key=len, reverse=True)
        self.spans = {s: spans[s] for s in keep}
        self.pattern = re.compile("|".join(map(re.escape, keep))) if keep else None
        self.allow = [a.casefold() for a in allow]

    def _shape(self, entity: str, match: re.Match) -> str:
        text = match.group(0)
        if any(a in text.casefold() for a in self.allow) or (entity == "PHONE_NUMBER" and not _phone_like(text)):
            return text
        return f"[{entity}]"

    def mask(self, text: Any) -> str:
        text = "" if text is None else str(text)
        if self.pattern:
            text = self.pattern.sub(lambda m: f"[{self.spans[m.group(0)]}]", text)
        for entity, shape in SHAPES:
            text = shape.sub(lambda m, e=entity: self._shape(e, m), text)
        return text

    def esc(self, text: Any) -> str:
        return html.escape(self.mask(text))


def pii_spans(samples: pd.DataFrame, inputs: pd.DataFrame, allow: Iterable[str] = ()) -> dict[str, str]:
    """{matched text: entity} for every PII finding of every sample, resolved against the
    filter's input text (`inputs`: the critiqued rows, by id); findings whose span names an
    `allow` term (filter.pii.allow) are not PII to the pipeline and are left as they are."""
    if "filter" not in samples:
        return {}
    allowed = [a.casefold() for a in allow]
    source = {str(r.id): r for r in inputs.itertuples()} if "id" in inputs else {}
    spans: dict[str, str] = {}
    for row in samples.itertuples():
        findings = loads(row.filter).get("pii") or []
        base = source.get(str(row.id), row)
        text = messages_text(exported_parts(base.messages, base.evidence))
        for f in findings:
            span = text[f["start"]:f["end"]]
            if span and not any(a in span.casefold() for a in allowed):
                spans[span] = str(f["entity"])
    return spans


def highlight(text: str, quotes: Iterable[str], m: Masker) -> str:
    """Escaped `text` with every occurrence of every quote (case-insensitive) in <mark>."""
    text = m.mask(text)
    spans = sorted((x.start(), x.end()) for q in quotes if str(q).strip()
                   for x in re.finditer(re.escape(m.mask(q).strip()), text, re.IGNORECASE))
    out, at = [], 0
    for start, end in spans:
        if end <= at:
            continue
        start = max(start, at)
        out += [html.escape(text[at:start]), f"<mark>{html.escape(text[start:end])}</mark>"]
        at = end
    return "".join(out) + html.escape(text[at:])


def _conversation(messages: Any, m: Masker) -> str:
    turns = "".join(f'<div class="turn {m.esc(t["role"])}"><b>{m.esc(t["role"])}</b> {m.esc(t["content"])}</div>'
                    for t in _items(messages))
    return f'<div class="conv">{turns or "<i>no messages</i>"}</div>'


def revision_diff(before: Any, after: Any, m: Masker) -> str:
    """A unified diff (difflib) of the conversation before and after revision, escaped."""
    def lines(messages: Any) -> list[str]:
        return [f'{t["role"]}: {line}' for t in messages for line in m.mask(t["content"]).splitlines()]
    diff = list(difflib.unified_diff(lines(before), lines(after), "before revision", "after revision", lineterm="", n=2))
    css = {"+": "add", "-": "del", "@": "hunk"}
    body = "\n".join(f'<span class="{css.get(x[:1], "")}">{html.escape(x)}</span>' for x in diff)
    return f'<pre class="diff">{body}</pre>' if diff else "<p><i>the revision changed no text</i></p>"


def _verdict(j: dict[str, Any], m: Masker) -> str:
    """One judge's entry: its P(Yes), its error, or why it was not asked (a verdict could not
    change the decision)."""
    if j.get("error") is not None:
        return f'{m.esc(j["judge"])} error: {m.esc(j["error"])}'
    if j.get("p_yes") is None:
        return f'{m.esc(j["judge"])} not asked ({m.esc(str(j.get("skipped") or "no verdict"))})'
    return f'{m.esc(j["judge"])} {j["p_yes"]:.2f}'


def _round(r: dict[str, Any], m: Masker) -> str:
    d = r.get("decision") or {}
    judges = ", ".join(_verdict(j, m) for j in r.get("judges", []))
    verifier = r.get("verifier") or {}
    unsupported = "".join(f"<li>{m.esc(u)}</li>" for u in verifier.get("unsupported", []))
    by = m.esc(d.get("by", r.get("decided_by", "?")))
    parts = [f'<b>round {r.get("round", "?")}: {m.esc(d.get("decision", "?"))}</b> (by {by})',
             f'P(grounded) {r.get("p_grounded") or 0:.3f}, P(signals) {r.get("p_signals") or 0:.3f}; '
             f'judges: {judges or "none"}',
             f'vetoes: {m.esc(", ".join(r.get("vetoes", [])) or "none")}; claims supported: '
             f'{m.esc(verifier.get("supported", "?"))}/{m.esc(verifier.get("claims", "?"))}',
             f'feedback: {m.esc(d.get("note", ""))}']
    if r.get("revision_error"):
        parts.append(f'revision error: {m.esc(r["revision_error"])}')
    listed = f"<ul>{unsupported}</ul>" if unsupported else ""
    return f'<div class="round">{"<br>".join(parts)}{listed}</div>'


def _findings(info: dict[str, Any], m: Masker) -> str:
    pii = "".join(f'<tr><td>{m.esc(f["entity"])}</td><td>{int(f["start"])}-{int(f["end"])}</td>'
                  f'<td>{float(f["score"]):.2f}</td></tr>' for f in info.get("pii") or [])
    inj = info.get("injection") or {}
    tox = ", ".join(f"{m.esc(k)} {float(v):.3f}" for k, v in (info.get("toxicity") or {}).items())
    rows = [f'domain relevance: {m.esc(info.get("domain"))}', f"toxicity: {tox or 'none'}",
            f'injection score {m.esc(inj.get("score", 0))} {m.esc(", ".join(inj.get("patterns") or []))}',
            f'redacted entities: {m.esc(", ".join(info.get("redacted") or []) or "none")}',
            f'duplicate of: {m.esc(info.get("duplicate_of") or "none")}']
    table = (f'<table class="pii"><tr><th>PII entity</th><th>offsets</th><th>score</th></tr>{pii}</table>'
             if pii else "<p>no PII findings</p>")
    return "<br>".join(rows) + table


def _items(value: Any) -> list[Any]:
    """A list column's value as a list (None, NaN and arrays included)."""
    return [] if value is None or (isinstance(value, float) and pd.isna(value)) else list(value)


def _body(row: Any, chunk_text: dict[str, tuple[str, str]], before: Any, m: Masker) -> str:
    """Chunk with highlighted quotes, conversation, critique rounds, revision diff, findings."""
    quotes = _items(row.evidence)
    found = [(c, *chunk_text.get(str(c), ("", "(chunk not found)"))) for c in _items(row.seed_ids)]
    chunks = "".join(f'<div class="chunk"><div class="meta">{m.esc(c)} {m.esc(where)}</div>'
                     f'{highlight(text, quotes, m)}</div>' for c, where, text in found)
    critique = loads(getattr(row, "critique", None))
    rounds = "".join(_round(r, m) for r in critique.get("rounds") or []) or "<p>not critiqued</p>"
    original = critique.get("original_messages")
    diff = f"<h4>Revision diff</h4>{revision_diff(original, before, m)}" if original else ""
    error = getattr(row, "error", None)
    error = f'<p class="err">generation error: {m.esc(error)}</p>' if isinstance(error, str) and error else ""
    info = getattr(row, "filter", None)
    findings = _findings(loads(info), m) if isinstance(info, str) and info else "<p>not filtered</p>"
    return (f'{error}<h4>Chunk (evidence highlighted)</h4>{chunks}<h4>Conversation</h4>'
            f'{_conversation(row.messages, m)}<h4>Critique</h4>{rounds}{diff}<h4>Filter findings</h4>{findings}')


def sample_html(row: Any, chunk_text: dict[str, tuple[str, str]], before: Any, m: Masker) -> str:
    """One <details> block; data-* attributes carry what the page's filters read."""
    reasons = [str(r) for r in _items(getattr(row, "reasons", None))]
    names = " ".join(sorted({r.split(":")[0] for r in reasons}))
    status = getattr(row, "status", None) or getattr(row, "verdict", None) or "generated"
    score = getattr(row, "score", None)
    score = "" if score is None or pd.isna(score) else f"{float(score):.2f}"
    kind, status = m.esc(row.task), m.esc(status)
    return (f'<details class="sample" data-kind="{kind}" data-status="{status}" data-reasons="{m.esc(names)}">'
            f'<summary><code>{m.esc(row.id)}</code> <span class="tag">{kind}</span> '
            f'<span class="tag {status}">{status}</span> {m.esc(", ".join(reasons))} '
            f'<span class="score">{score}</span> <span class="first">{m.esc(_first_user(row.messages))}</span>'
            f'</summary>{_body(row, chunk_text, before, m)}</details>')


def _first_user(messages: Any) -> str:
    return next((str(t["content"])[:120] for t in _items(messages) if t["role"] == "user"), "")


def _option(value: str, label: str | None = None) -> str:
    return f'<option value="{html.escape(value)}">{html.escape(label or value)}</option>'


def _select(name: str, values: list[str]) -> str:
    return (f'<label>{name} <select id="f-{name}">{_option("", "all")}'
            + "".join(_option(v) for v in values) + "</select></label>")


def browser(samples: pd.DataFrame, critiqued: pd.DataFrame, chunks: pd.DataFrame, allow: Iterable[str] = ()) -> str:
    """The filter controls and every sample's block. `samples`: the filter's decided rows (with
    `status`), else the critiqued or generated rows."""
    if not len(samples):
        return "<p>No samples yet: run the pipeline (dvc repro).</p>"
    m = Masker(pii_spans(samples, critiqued, allow), allow)
    text = {str(c.chunk_id): (f"{c.source} \u203a {c.section}" if c.section else str(c.source), str(c.text))
            for c in chunks.itertuples()} if "text" in chunks else {}
    before = dict(zip(critiqued["id"].astype(str), critiqued["messages"], strict=True)) if "messages" in critiqued else {}
    blocks = [sample_html(row, text, before.get(str(row.id), row.messages), m) for row in samples.itertuples()]
    kinds = sorted(samples["task"].astype(str).unique())
    statuses = sorted(samples["status"].astype(str).unique()) if "status" in samples else []
    reasons = sorted({str(r).split(":")[0] for rs in samples.get("reasons", []) for r in rs})
    controls = (f'<div class="controls">{_select("kind", kinds)} {_select("status", statuses)} {_select("reason", reasons)} '
                '<label>search <input id="f-q" type="search" placeholder="text in the sample"></label> '
                f'<span id="shown">{len(blocks)} of {len(blocks)}</span></div>')
    return controls + f'<div id="samples">{"".join(blocks)}</div>'

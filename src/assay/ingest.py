"""Seed documents -> cleaned, section-aware, content-hashed chunks.

Loaders turn a file into (section title, text) pieces; the chunker packs paragraphs of a piece
into windows of about `chunk_tokens` tokens with `overlap_tokens` carried over. Bad files are
skipped with a counted reason, never a crash; an empty seed folder is an error.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup

from assay.config import Ingest
from assay.errors import AssayError
from assay.records import content_hash

log = logging.getLogger(__name__)
Piece = tuple[str, str]  # (section title, text)
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


class SkipFile(Exception):
    """The file cannot be used; the message is the counted reason."""


def approx_tokens(text: str) -> int:
    """Tokenizer-free estimate (~1.3 tokens per word for English BPE vocabularies)."""
    return math.ceil(len([w for w in text.split() if w]) * 1.3)


def clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\u00a0", " ")
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def load_markdown(text: str, title: str) -> list[Piece]:
    """Split at headings; the section title is the heading path (e.g. 'Setup > Wiring')."""
    pieces: list[Piece] = []
    path: list[str] = []
    body: list[str] = []
    for line in text.splitlines():
        match = _HEADING.match(line)
        if match:
            pieces.append((" > ".join(path) or title, "\n".join(body)))
            level = len(match.group(1))
            path = path[: level - 1] + [match.group(2)]
            body = []
        else:
            body.append(line)
    pieces.append((" > ".join(path) or title, "\n".join(body)))
    return [(sec, clean(txt)) for sec, txt in pieces if clean(txt)]


def load_html(text: str, title: str) -> list[Piece]:
    """Visible text only (scripts, styles, nav, footer dropped), split at h1-h3."""
    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "nav", "footer", "noscript", "template"]):
        tag.decompose()
    page_title = soup.title.get_text(strip=True) if soup.title else title
    lines = []
    for el in (soup.body or soup).find_all(["h1", "h2", "h3", "p", "li", "td", "pre"]):
        prefix = "#" * int(el.name[1]) + " " if el.name in ("h1", "h2", "h3") else ""
        lines.append(prefix + el.get_text(" ", strip=True))
    return load_markdown("\n\n".join(lines), page_title)


def _render_record(obj: dict[str, Any]) -> str:
    if "turns" in obj and isinstance(obj["turns"], list):
        return "\n".join(f"{t.get('role', '?').title()}: {t.get('text', '')}" for t in obj["turns"])
    if "customer_message" in obj:
        lines = [f"Customer: {obj['customer_message']}"]
        if obj.get("agent_reply"):
            lines.append(f"Agent: {obj['agent_reply']}")
        if obj.get("resolution"):
            lines.append(f"Resolution: {obj['resolution']}")
        return "\n".join(lines)
    return "\n".join(f"{k}: {v}" for k, v in obj.items() if isinstance(v, str | int | float))


def load_jsonl(text: str, title: str) -> list[Piece]:
    """One piece per record (ticket, chat); invalid lines are logged with their line number."""
    pieces = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            log.warning("%s:%d: invalid JSON line skipped (%s)", title, lineno, exc.msg)
            continue
        if isinstance(obj, dict):
            name = obj.get("ticket_id") or obj.get("conversation_id") or obj.get("id") or f"record {lineno}"
            pieces.append((str(name), clean(_render_record(obj))))
    return [p for p in pieces if p[1]]


LOADERS = {".md": load_markdown, ".markdown": load_markdown, ".txt": load_markdown,
           ".html": load_html, ".htm": load_html, ".jsonl": load_jsonl}


def read_text(path: Path, max_bytes: int) -> str:
    """Decoded text of a seed file, or SkipFile with the reason."""
    size = path.stat().st_size
    if size == 0:
        raise SkipFile("empty")
    if size > max_bytes:
        raise SkipFile("oversized")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise SkipFile("binary")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SkipFile("undecodable") from None


def _windows(paragraphs: list[str], budget: int, overlap: int) -> Iterator[str]:
    words: list[str] = []
    for para in paragraphs:
        para_words = [w for w in re.split(r"[ \t]+", para.strip().replace("\n", " \n ")) if w]
        para_words.append("\n\n")
        if words and approx_tokens(" ".join(words + para_words)) > budget:
            yield " ".join(words)
            keep = int(overlap / 1.3)
            words = words[-keep:] if keep else []
        words += para_words
        while approx_tokens(" ".join(words)) > budget * 1.5:  # one paragraph larger than a chunk
            cut = int(budget / 1.3)
            yield " ".join(words[:cut])
            words = words[max(1, cut - int(overlap / 1.3)):]
    if words:
        yield " ".join(words)


def chunk_pieces(source: str, pieces: list[Piece], cfg: Ingest) -> list[dict[str, Any]]:
    """Chunk rows for one file, positions counted across the file."""
    rows = []
    for section, text in pieces:
        paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
        for window in _windows(paragraphs, cfg.chunk_tokens, cfg.overlap_tokens):
            body = re.sub(r" *\n *", "\n", window).strip()
            if len(body) < cfg.min_chunk_chars:
                continue
            digest = content_hash(body)
            rows.append({"chunk_id": content_hash(source, section, len(rows), digest), "source": source,
                         "section": section, "position": len(rows), "text": body,
                         "n_tokens": approx_tokens(body), "content_hash": digest})
    return rows


def ingest(seed_dir: str | Path, cfg: Ingest) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All chunks of the seed folder (sorted by path, deterministic) and ingest metrics."""
    root = Path(seed_dir)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise AssayError(f"{root}: no seed files found; put your documents (md, txt, html, jsonl) there")
    rows: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for path in files:
        rel = path.relative_to(root).as_posix()
        suffix = path.suffix.lower()
        if suffix not in cfg.extensions or suffix not in LOADERS:
            skipped["unsupported_type"] += 1
            log.info("%s: skipped (unsupported type %s)", rel, suffix or "none")
            continue
        try:
            text = read_text(path, int(cfg.max_file_mb * 1024 * 1024))
        except SkipFile as reason:
            skipped[str(reason)] += 1
            log.warning("%s: skipped (%s)", rel, reason)
            continue
        rows += chunk_pieces(rel, LOADERS[suffix](text, path.stem), cfg)
    if not rows:
        raise AssayError(f"{root}: {len(files)} files but no usable text (skipped: {dict(skipped)})")
    metrics = {"files": len(files), "files_used": len(files) - sum(skipped.values()), "chunks": len(rows),
               "tokens": sum(r["n_tokens"] for r in rows), "skipped": sum(skipped.values())}
    metrics |= {f"skipped.{k}": v for k, v in sorted(skipped.items())}
    return rows, metrics

"""Seed files -> (section title, text, kind) pieces: one loader per format (Markdown/text, HTML,
JSONL/CSV tickets and chats, OpenAPI yaml/json, PDF). A file that cannot be used raises SkipFile
with the counted reason; a bad record inside a usable file (an invalid JSONL line) is skipped,
logged with its line number and counted in `problems` (every loader takes the counter; loaders of
record files use it)."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from bs4 import BeautifulSoup

from assay import markup, openapi

log = logging.getLogger(__name__)
Piece = tuple[str, str, str]  # (section title, text, kind)
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
STEP = re.compile(r"^\s*(\d{1,2})[.)]\s+\S")  # a numbered step: "1. ", "2) "
_NEGATED_INTRO = re.compile(r"\b(not|never|avoid)\b", re.IGNORECASE)

SKIP_HINTS = {  # how to fix a skipped seed file, appended to its warning
    "binary": "; not a text document: remove it or convert it to md/txt/html",
    "undecodable": "; not UTF-8: re-save it as UTF-8",
    "oversized": "; larger than ingest.max_file_mb: split it or raise the limit in params.yaml",
    "empty": "; remove it or add content",
    "unreadable": "; check the file's permissions",
    "invalid_spec": "; the YAML/JSON does not parse: fix its syntax",
    "invalid_pdf": "; the PDF is damaged: re-export it",
    "encrypted_pdf": "; remove the PDF's password",
    "no_text": "; no extractable text (scanned images?): OCR it first",
}


class SkipFile(Exception):
    """The file cannot be used; the message is the counted reason."""


def clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\u00a0", " ")
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def section_kind(text: str) -> str:
    """'workflow' for a section with a numbered procedure (3+ steps, not a list of prohibitions
    such as 'agents must not: 1. ...'), else 'prose'."""
    lines = text.splitlines()
    steps = [i for i, line in enumerate(lines) if STEP.match(line)]
    if len(steps) < 3:
        return "prose"
    intro = next((lines[i] for i in range(steps[0] - 1, -1, -1) if lines[i].strip()), "")
    return "prose" if _NEGATED_INTRO.search(intro) else "workflow"


def load_markdown(text: str, title: str, problems: Counter[str] | None = None) -> list[Piece]:
    """Split at headings; the section title is the heading path (e.g. 'Setup > Wiring'). A `#`
    line inside fenced code (a shell comment) is text, not a heading."""
    pieces: list[tuple[str, str]] = []
    path: list[str] = []
    body: list[str] = []
    lines = text.splitlines()
    code = markup.code_lines(lines)
    for i, line in enumerate(lines):
        match = None if i in code else _HEADING.match(line)
        if match:
            pieces.append((" > ".join(path) or title, "\n".join(body)))
            level = len(match.group(1))
            path = path[: level - 1] + [match.group(2)]
            body = []
        else:
            body.append(line)
    pieces.append((" > ".join(path) or title, "\n".join(body)))
    cleaned = [(sec, clean(txt)) for sec, txt in pieces]
    return [(sec, txt, section_kind(txt)) for sec, txt in cleaned if txt]


def load_docs(text: str, title: str, problems: Counter[str] | None = None) -> list[Piece]:
    """Markdown as docs sites write it (Docusaurus/MDX, MkDocs, Hugo): front matter, imports,
    tags, admonition markers and shortcodes removed (assay.markup.plain), then load_markdown."""
    return load_markdown(markup.plain(text), title, problems)


_BLOCKS = ["p", "li", "td", "th", "tr", "pre", "div", "blockquote", "dd", "dt", "ul", "ol", "table",
           "section", "article", "main", "header", "figcaption", "caption", "br", "hr"]


def load_html(text: str, title: str, problems: Counter[str] | None = None) -> list[Piece]:
    """All visible text once (scripts, styles, nav, footer dropped), a paragraph per block
    element, split at h1-h3 (h4-h6 stay as text lines of their section)."""
    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "nav", "footer", "noscript", "template"]):
        tag.decompose()
    page_title = soup.title.get_text(strip=True) if soup.title else title
    root = soup.body or soup
    for heading in root.find_all(re.compile(r"^h[1-6]$")):
        level = int(heading.name[1])  # h4-h6 stay in the text of their h1-h3 section
        prefix = "#" * level + " " if level <= 3 else ""
        heading.replace_with(f"\n\n{prefix}{heading.get_text(' ', strip=True)}\n\n")
    for block in root.find_all(_BLOCKS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    lines = [" ".join(line.split()) for line in root.get_text().splitlines()]
    return load_markdown("\n".join(lines), page_title)


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


def record_piece(obj: dict[str, Any], fallback: str) -> Piece:
    """One ticket or chat record -> (its id, rendered text, 'chat' | 'ticket' | 'prose')."""
    name = obj.get("ticket_id") or obj.get("conversation_id") or obj.get("id") or fallback
    kind = ("chat" if isinstance(obj.get("turns"), list) else
            "ticket" if "customer_message" in obj else "prose")
    return str(name), clean(_render_record(obj)), kind


def load_jsonl(text: str, title: str, problems: Counter[str] | None = None) -> list[Piece]:
    """One piece per record (ticket, chat). A line that is not JSON or not an object is skipped,
    logged with its line number and counted in `problems` (invalid_json_line, not_an_object_line)."""
    pieces, problems = [], problems if problems is not None else Counter()
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            log.warning("%s:%d: invalid JSON line skipped (%s): fix or remove the line", title, lineno, exc.msg)
            problems["invalid_json_line"] += 1
            continue
        if isinstance(obj, dict):
            pieces.append(record_piece(obj, f"record {lineno}"))
        else:
            log.warning("%s:%d: JSON line skipped: a %s, not an object with the record's fields", title, lineno,
                        type(obj).__name__)
            problems["not_an_object_line"] += 1
    return [p for p in pieces if p[1]]


def load_csv(text: str, title: str, problems: Counter[str] | None = None) -> list[Piece]:
    """Tickets or chats as CSV. One row per ticket (customer_message, agent_reply, ...), or one
    row per chat turn (conversation_id, role, text), grouped into one chat per conversation."""
    try:
        rows = [r for r in csv.DictReader(io.StringIO(text)) if any((v or "").strip() for v in r.values())]
    except csv.Error as exc:
        raise SkipFile("invalid_csv") from exc
    if not rows or None in rows[0]:
        raise SkipFile("invalid_csv")  # no data rows, or rows longer than the header
    if {"conversation_id", "role", "text"} <= set(rows[0]):
        chats: dict[str, list[dict[str, str]]] = {}
        for row in rows:
            chats.setdefault(row["conversation_id"], []).append({"role": row["role"], "text": row["text"]})
        pieces = [record_piece({"conversation_id": cid, "turns": turns}, cid) for cid, turns in chats.items()]
    else:
        pieces = [record_piece({k: v for k, v in r.items() if v}, f"row {i}") for i, r in enumerate(rows, 2)]
    return [p for p in pieces if p[1]]


class _YamlLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: `off`, `on`, `yes`, `no` stay strings (an enum value `off` is not False)."""


_YamlLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_YamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))


def load_openapi(text: str, title: str, problems: Counter[str] | None = None) -> list[Piece]:
    """An OpenAPI spec (yaml or json): the spec's description as prose, then one api_operation
    piece per operation. Other YAML/JSON is skipped ('not_openapi'); a parse error 'invalid_spec'."""
    try:
        doc = yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SkipFile("invalid_spec") from exc
    if not openapi.is_spec(doc):
        raise SkipFile("not_openapi")
    head = openapi.overview(doc)
    pieces = [(head[0], clean(head[1]), "prose")] if head else []
    return pieces + [(sec, txt, "api_operation") for sec, txt in openapi.operations(doc)]


def load_pdf(data: bytes, title: str, problems: Counter[str] | None = None) -> list[Piece]:
    """Text of each page (pypdf), one piece per page titled 'p.N'. Encrypted, unreadable or
    image-only PDFs are skipped with the reason."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise SkipFile("encrypted_pdf")
        pages = [clean(page.extract_text() or "") for page in reader.pages]
    except SkipFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise SkipFile("invalid_pdf") from exc
    if not any(pages):
        raise SkipFile("no_text")  # scanned pages: OCR is out of scope
    return [(f"{title} p.{n}", text, section_kind(text)) for n, text in enumerate(pages, 1) if text]


LOADERS = {".md": load_docs, ".markdown": load_docs, ".mdx": load_docs, ".txt": load_markdown,
           ".html": load_html, ".htm": load_html, ".jsonl": load_jsonl, ".csv": load_csv,
           ".yaml": load_openapi, ".yml": load_openapi, ".json": load_openapi, ".pdf": load_pdf}
BINARY = {".pdf"}  # loaders that take bytes


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, or SkipFile('empty' | 'oversized' | 'unreadable')."""
    size = path.stat().st_size
    if size == 0:
        raise SkipFile("empty")
    if size > max_bytes:
        raise SkipFile("oversized")
    try:
        return path.read_bytes()
    except OSError:
        raise SkipFile("unreadable") from None


def read_text(path: Path, max_bytes: int) -> str:
    """Decoded text of a seed file, or SkipFile with the reason."""
    data = read_bytes(path, max_bytes)
    if b"\x00" in data[:8192]:
        raise SkipFile("binary")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SkipFile("undecodable") from None


def load_file(path: Path, suffix: str, max_bytes: int, problems: Counter[str] | None = None) -> list[Piece]:
    """A seed file's pieces by its loader; SkipFile with the counted reason when it is unusable
    (a loader's unexpected failure on a bad file is counted as 'unparsable', never a crash).
    Bad records inside a usable file are counted in `problems`."""
    if suffix in BINARY:
        data: bytes | str = read_bytes(path, max_bytes)
    else:
        data = read_text(path, max_bytes)
    try:
        return LOADERS[suffix](data, path.stem, problems)
    except SkipFile:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad file must not end the stage
        log.warning("%s: loader failed: %s: %s", path.name, type(exc).__name__, exc)
        raise SkipFile("unparsable") from exc

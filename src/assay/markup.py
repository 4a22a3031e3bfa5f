"""Markdown as docs sites write it (Docusaurus/MDX, MkDocs, Hugo) -> plain Markdown: the text a
reader sees, with headings kept for sectioning and fenced code kept verbatim.

Dropped: YAML (`---`) or TOML (`+++`) front matter, MDX `import`/`export` lines, HTML and MDX
comments, HTML/JSX tags (their text content stays), admonition markers (Docusaurus `:::note`
... `:::`, MkDocs `!!! warning "Title"` / `??? note` / `=== "Tab"` with their indented body
dedented and kept, Hugo shortcodes `{{< hint >}}` / `{{% notice %}}`), heading ids `{#id}` and
attribute lists, link and image targets (their text stays), emphasis markers and HTML entities.
An admonition's or tab's title stays as a line of its own; a marker without a title leaves
nothing, so that no label the author did not write enters the text."""

from __future__ import annotations

import html
import re

import tomllib
import yaml

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_COMMENT = re.compile(r"<!--.*?-->|\{/\*.*?\*/\}", re.DOTALL)
_IMPORT = re.compile(r"""^import\s+(?:[\w*{}\s,]+\s+from\s+)?['"][^'"]+['"];?\s*$""")
_EXPORT = re.compile(r"^export\s+(?:const|let|var|default|function|async)\b")
_DOCUSAURUS = re.compile(r"^\s*:{3,}\s*(?:[\w-]+)?\s*(?:\[(?P<bracket>[^\]]*)\]|(?P<title>.*?))\s*$")
_MKDOCS = re.compile(r"""^(?P<indent>\s*)(?:(?:!!!|\?\?\?\+?)\s+[\w-]+(?:\s+(?P<q>["'])(?P<title>.*?)(?P=q))?"""
                     r"""|===\+?\s+(?P<qq>["'])(?P<tab>.*?)(?P=qq))\s*$""")
_SHORTCODE = re.compile(r"\{\{[<%].*?[%>]\}\}")
_TAG = re.compile(r"</?[A-Za-z][\w.:-]*(?:\s[^<>]*?)?/?>")
_ATTRS = re.compile(r"\s*\{:?\s*[#.][^{}]*\}")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\[[^\]]*\])")
_LINK_DEF = re.compile(r"^\s*\[[^\]]+\]:\s+\S+")
_EMPHASIS = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1|(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![\w*])")


def strip_front_matter(text: str) -> str:
    """`text` without a leading YAML (`---`) or TOML (`+++`) block that parses as a mapping; a
    document that merely opens with a horizontal rule is returned unchanged."""
    lines = text.split("\n")
    mark = lines[0].strip()
    if mark not in ("---", "+++"):
        return text
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == mark), None)
    if end is None or not _is_metadata("\n".join(lines[1:end]), mark):
        return text
    return "\n".join(lines[end + 1:])


def _is_metadata(block: str, mark: str) -> bool:
    try:
        data = yaml.safe_load(block) if mark == "---" else tomllib.loads(block)
    except (yaml.YAMLError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data, dict) and bool(data)


def inline(line: str) -> str:
    """One prose line without tags, shortcodes, link targets, emphasis markers and entities."""
    line = _SHORTCODE.sub("", line)
    line = _TAG.sub("", line)
    line = _IMAGE.sub(r"\1", line)
    line = _LINK.sub(r"\1", line)
    line = _ATTRS.sub("", line)
    line = _EMPHASIS.sub(lambda m: m.group(2) or m.group(3), line)
    return html.unescape(line)


def _marker(line: str) -> tuple[str, int] | None:
    """(title, body indent) when `line` opens or closes an admonition or tab, else None."""
    match = _MKDOCS.match(line)
    if match:
        return match.group("title") or match.group("tab") or "", len(match.group("indent")) + 4
    match = _DOCUSAURUS.match(line)
    if match:
        return match.group("bracket") or match.group("title") or "", 0
    return None


def _dedent(line: str, depth: int) -> tuple[str, int]:
    """The line without the indentation of the MkDocs bodies it is inside; a non-blank line
    that is less indented closes them."""
    line = line.replace("\t", "    ")
    while depth and line.strip() and not line.startswith(" " * depth):
        depth -= 4
    return (line[depth:] if line.strip() else ""), depth


def code_lines(lines: list[str]) -> set[int]:
    """Indices of lines inside fenced code blocks (fence lines included)."""
    inside, fence = set(), ""
    for i, line in enumerate(lines):
        match = _FENCE.match(line)
        if fence or match:
            inside.add(i)
        if match and not fence:
            fence = match.group(1)
        elif fence and line.strip().startswith(fence):
            fence = ""
    return inside


def plain(text: str) -> str:
    """Docs-site Markdown -> plain Markdown (see the module docstring). Headings and fenced code
    blocks are kept; the rest of each line goes through `inline`."""
    text = _COMMENT.sub("", strip_front_matter(text.replace("\r\n", "\n")))
    out: list[str] = []
    depth, skipping = 0, 0  # open MkDocs body indentation; open brackets of a multi-line export
    lines = text.split("\n")
    code = code_lines(lines)
    for i, raw in enumerate(lines):
        line, depth = _dedent(raw, depth)
        if i in code:
            out.append(line)
        elif skipping or _EXPORT.match(line):
            skipping = max(0, skipping + sum(map(line.count, "{[(")) - sum(map(line.count, "}])")))
        elif _IMPORT.match(line) or _LINK_DEF.match(line):
            continue
        elif (marker := _marker(line)) is not None:
            out += [inline(marker[0]), ""] if marker[0] else [""]  # a title is a paragraph of its own
            depth += marker[1]
        else:
            out.append(inline(line).strip() if _TAG.search(line) or _SHORTCODE.search(line) else inline(line))
    return "\n".join(out)

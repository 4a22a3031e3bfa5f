"""Help-centre items for the grounding set: factual sentences of CC BY 4.0 Microsoft product docs
(Windows Terminal, WSL), kept or perturbed with `assay.perturb`, each with its docs section as source."""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

from assay.perturb import perturb

SEED = 13
SENTENCES_PER_PAGE = 11
MAX_SECTION_CHARS = 4000
PAGES = {  # repo name -> pages (~30 help articles, the longest reference pages and release notes left out)
    "MicrosoftDocs/terminal": [f"TerminalDocs/{p}.md" for p in (
        "command-line-arguments", "tips-and-tricks", "customize-settings/profile-appearance",
        "customize-settings/interaction", "panes", "customize-settings/appearance", "troubleshooting",
        "json-fragment-extensions", "customize-settings/profile-advanced", "customize-settings/startup",
        "distributions", "customize-settings/profile-general", "selection", "install", "command-palette",
        "dynamic-profiles")],
    "MicrosoftDocs/WSL": [f"WSL/{p}.md" for p in (
        "troubleshooting", "wsl-config", "install-manual", "disk-space", "basic-commands", "install",
        "compare-versions", "networking", "filesystems", "systemd", "enterprise", "connect-usb",
        "file-permissions", "use-custom-distro", "wsl-container")],
}

_DROP_LINE = re.compile(r"^\s*(?:\||:::|\[!INCLUDE|<|!\[|\[!div|#{1,6}\s*$)")
_INLINE = [
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links keep their text
    (re.compile(r"</?(?:br|a|img|kbd|sup|sub|div|span|p|b|i|em|strong|code)\b[^>]*>", re.I), ""), (re.compile(r"`([^`]*)`"), r"\1"), (re.compile(r"\*\*|__|(?<!\w)\*(?!\s)|(?<!\s)\*(?!\w)"), ""),
    (re.compile(r"^\s*(?:>\s*)?(?:\[!(?:NOTE|TIP|IMPORTANT|WARNING|CAUTION)\]\s*)?"), ""), (re.compile(r"^\s*(?:[-*+]|\d+\.)\s+"), ""),
]
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_BAD_SENTENCE = re.compile(r"https?:|://|\\|[\[\]{}|<>`=]|^(?:For more|See |Learn more|To learn|Example)|:$")
# Edits tried first; the last one of each family always applies and would otherwise dominate.
_ORDER = {"grounded": (["drop_clause", "reword"], "verbatim"),
          "ungrounded": (["number_change", "entity_swap", "negation", "condition_swap"], "added_detail")}


def clean_markdown(text: str) -> list[tuple[str, str]]:
    """Markdown page -> [(heading, plain-text section)]: front matter, code, tables and markup removed."""
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    text = re.sub(r"^\s*```.*?^\s*```", "", text, flags=re.S | re.M)
    sections, heading, paras = [], "", [[]]
    for line in text.splitlines():
        if re.match(r"^#{1,6}\s", line):
            sections.append((heading, paras))
            heading, paras = line.lstrip("#").strip(), [[]]
        elif not line.strip() or _DROP_LINE.match(line) or re.match(r"^\s*(?:[-*+]|\d+\.)\s", line):
            paras.append([])  # a blank line, dropped markup or a list item ends a paragraph
            if re.match(r"^\s*(?:[-*+]|\d+\.)\s", line):
                paras[-1].append(line)
        else:
            paras[-1].append(line)
    sections.append((heading, paras))
    return [(h, "\n".join(p for p in (_plain(" ".join(x)) for x in ps) if p)) for h, ps in sections]


def _plain(line: str) -> str:
    for pattern, repl in _INLINE:
        line = pattern.sub(repl, line)
    return re.sub(r"\s+", " ", line).strip()


def factual_sentences(section: str) -> list[str]:
    """Sentences of one section worth checking: 8-45 words, ending in a period, no leftover markup."""
    out = []
    for para in section.splitlines():
        for s in _SENT_SPLIT.split(para):
            if s.endswith(".") and 8 <= len(s.split()) <= 45 and not _BAD_SENTENCE.search(s):
                out.append(s)
    return out


def _first_applicable(sentence: str, label: str, rng: random.Random, context: str) -> tuple[str, str] | None:
    first, fallback = _ORDER[label]
    for kind in [*rng.sample(first, len(first)), fallback]:
        text = perturb(sentence, kind, SEED, context)
        if text is not None:
            return kind, text
    return None


def page_items(repo: str, path: str, text: str) -> list[dict]:
    """One grounded and one ungrounded variant of up to SENTENCES_PER_PAGE sentences of one page."""
    rng = random.Random(f"{SEED}|{path}")
    pool = []
    for heading, body in clean_markdown(text):
        source = f"{heading}\n{body}".strip()
        if 300 <= len(source) <= MAX_SECTION_CHARS:
            pool += [(source, s) for s in factual_sentences(body)]
    items = []
    for source, sentence in rng.sample(pool, min(SENTENCES_PER_PAGE, len(pool))):
        for label in ("grounded", "ungrounded"):
            hit = _first_applicable(sentence, label, rng, source)
            if hit:
                items.append({"origin": "help_centre", "genre": "help_centre", "source": source, "question": "",
                              "answer": hit[1], "label": label, "kind": hit[0], "ref": f"{repo}:{path}"})
    return items


def help_items(mirrors: dict[str, Path]) -> list[dict]:
    """Items from every page of PAGES, read at HEAD of each repo's bare git mirror."""
    items = []
    for repo, paths in PAGES.items():
        for path in paths:
            text = subprocess.run(["git", "--git-dir", str(mirrors[repo]), "show", f"HEAD:{path}"],
                                  capture_output=True, text=True, check=True).stdout
            items += page_items(repo, path, text)
    return items


def seed_items(chunks: list[dict], per_chunk: int = 2) -> list[dict]:
    """Labelled items from a user's own seed chunks (chunk_id, text): one grounded and one
    ungrounded variant of up to `per_chunk` factual sentences of each chunk, the chunk as source,
    so a decision can be fitted to the documents it will judge (origin `seeds`)."""
    items = []
    for chunk in chunks:
        source = chunk["text"]
        if not 300 <= len(source) <= MAX_SECTION_CHARS:
            continue
        rng = random.Random(f"{SEED}|{chunk['chunk_id']}")
        sentences = factual_sentences(source)
        for sentence in rng.sample(sentences, min(per_chunk, len(sentences))):
            for label in ("grounded", "ungrounded"):
                hit = _first_applicable(sentence, label, rng, source)
                if hit:
                    items.append({"id": f"seeds-{chunk['chunk_id']}-{label}-{len(items)}", "origin": "seeds",
                                  "genre": "seeds", "source": source, "question": "", "answer": hit[1],
                                  "label": label, "kind": hit[0]})
    return items

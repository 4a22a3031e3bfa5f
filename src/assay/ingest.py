"""Seed documents -> cleaned, section-aware, content-hashed chunks.

Loaders turn a file into (section title, text, kind) pieces; kind is prose | ticket | chat |
api_operation | workflow, so that generation can choose task kinds per chunk. The chunker packs
paragraphs of a piece into windows of about `chunk_tokens` tokens with `overlap_tokens` carried
over; a ticket, a chat and an API operation are one chunk each, and a workflow (numbered steps)
stays whole up to `workflow_max_tokens`, else splits between steps. Bad files (empty, oversized,
binary, undecodable, unreadable PDF, a CSV without rows, YAML/JSON that is not an OpenAPI spec)
are skipped with a counted reason, never a crash; an empty seed folder is an error.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assay.config import Ingest, Injection
from assay.errors import AssayError
from assay.filters import embed, injection
from assay.loaders import LOADERS, SKIP_HINTS, STEP, Piece, SkipFile, load_file
from assay.records import content_hash

log = logging.getLogger(__name__)
KINDS = ("prose", "ticket", "chat", "api_operation", "workflow")


def approx_tokens(text: str) -> int:
    """Tokenizer-free estimate (~1.3 tokens per word for English BPE vocabularies)."""
    return math.ceil(len([w for w in text.split() if w]) * 1.3)


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


def _steps(text: str) -> list[str]:
    """A workflow's units: the intro paragraphs, then one unit per numbered step (with its
    continuation lines), so that a split never falls inside a step."""
    units: list[str] = []
    for line in text.splitlines():
        if not units or STEP.match(line) or (not line.strip() and not STEP.match(units[-1])):
            units.append(line)
        else:
            units[-1] += "\n" + line
    return [u.strip() for u in units if u.strip()]


def _piece_windows(text: str, kind: str, cfg: Ingest) -> Iterator[str]:
    if kind in ("ticket", "chat", "api_operation"):
        yield text  # one record / one operation is one chunk, whatever its size
    elif kind == "workflow":
        yield from _windows(_steps(text), max(cfg.chunk_tokens, cfg.workflow_max_tokens), 0)
    else:
        yield from _windows([p for p in re.split(r"\n\s*\n", text) if p.strip()],
                            cfg.chunk_tokens, cfg.overlap_tokens)


def chunk_pieces(source: str, pieces: list[Piece], cfg: Ingest) -> list[dict[str, Any]]:
    """Chunk rows (CHUNK_COLUMNS) for one file, positions counted across the file."""
    rows = []
    for section, text, kind in pieces:
        for window in _piece_windows(text, kind, cfg):
            body = re.sub(r" *\n *", "\n", window).strip()
            if len(body) < cfg.min_chunk_chars:
                continue
            digest = content_hash(body)
            rows.append({"chunk_id": content_hash(source, section, len(rows), digest), "source": source,
                         "section": section, "position": len(rows), "text": body,
                         "n_tokens": approx_tokens(body), "content_hash": digest, "kind": kind})
    return rows


def ingest(seed_dir: str | Path, cfg: Ingest,
           injection_cfg: Injection | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All chunks of the seed folder (sorted by path, deterministic) and ingest metrics.
    `injection_cfg` (params filter.injection) decides which chunks are reported as carrying an
    injected instruction (metric injection_chunks); None: default threshold, regex and structural
    cues only (no model load: ingest has no score cache, and the filter re-scores cited chunks
    with the model anyway)."""
    root = Path(seed_dir)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise AssayError(f"{root}: no seed files found; put your documents there "
                         f"({', '.join(sorted(LOADERS))})")
    rows: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    records: Counter[str] = Counter()  # bad records inside usable files
    for path in files:
        rel = path.relative_to(root).as_posix()
        suffix = path.suffix.lower()
        if suffix not in cfg.extensions or suffix not in LOADERS:
            skipped["unsupported_type"] += 1
            log.info("%s: skipped (unsupported type %s)", rel, suffix or "none")
            continue
        try:
            pieces = load_file(path, suffix, int(cfg.max_file_mb * 1024 * 1024), records)
        except SkipFile as reason:
            skipped[str(reason)] += 1
            log.warning("%s: skipped (%s)%s", rel, reason, SKIP_HINTS.get(str(reason), ""))
            continue
        rows += chunk_pieces(rel, pieces, cfg)
    if not rows:
        raise AssayError(f"{root}: {len(files)} files but no usable text (skipped: {dict(skipped)})")
    metrics = {"files": len(files), "files_used": len(files) - sum(skipped.values()), "chunks": len(rows),
               "tokens": sum(r["n_tokens"] for r in rows), "skipped": sum(skipped.values())}
    metrics |= {f"skipped.{k}": v for k, v in sorted(skipped.items())}
    metrics |= {"skipped_records": sum(records.values())} | {f"skipped_records.{k}": v for k, v in sorted(records.items())}
    kinds = Counter(r["kind"] for r in rows)
    metrics |= {f"kind.{k}": kinds.get(k, 0) for k in KINDS}
    metrics["injection_chunks"] = _flag_injections(rows, injection_cfg or Injection(embeddings=False))
    return rows, metrics


def _flag_injections(rows: list[dict[str, Any]], cfg: Injection) -> int:
    """Count (and name in the log, with the sentence) chunks carrying an injected instruction:
    they stay seeds, and the filter rejects any sample that carries the injection on or obeys it."""
    if not cfg.enabled:
        return 0
    found = injection.score_texts([r["text"] for r in rows], embed.embed if cfg.embeddings else None)
    flagged = 0
    for row, entry in zip(rows, found, strict=True):
        if entry["score"] < cfg.threshold:
            continue
        flagged += 1
        top = entry["instructions"][0] if entry["instructions"] else {"sentence": "", "cues": []}
        signals = ", ".join(entry["patterns"] + top["cues"]) or "meaning"
        log.warning("%s [%s]: prompt-injection text (score %.2f, %s: %r); samples that repeat or obey it "
                    "are rejected by the filter", row["source"], row["section"], entry["score"], signals,
                    top["sentence"][:120])
    return flagged

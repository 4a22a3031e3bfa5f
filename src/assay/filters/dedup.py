"""Exact and near-duplicate detection: MinHash LSH proposes candidates, exact Jaccard decides.

LSH alone at 0.8 measured recall 0.79 / precision 0.89; a looser LSH band (0.7) followed by an
exact Jaccard check of the shingle sets measured recall 0.97 / precision 1.00 (MEASURED.md).
"""

import hashlib
import re
import unicodedata
from collections import defaultdict

from datasketch import MinHash, MinHashLSH

SCORER_VERSION = "dedup-1"

_PUNCT = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFKC, casefold, turn punctuation into spaces, collapse whitespace; "" for blank text."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _PUNCT.sub(" ", folded)).strip()


def shingles(normalised: str, ngram: int) -> set[str]:
    """Word n-grams of a normalised text; the whole text is one shingle if it has < ngram words."""
    words = normalised.split()
    if len(words) < ngram:
        return {normalised}
    return {" ".join(words[i : i + ngram]) for i in range(len(words) - ngram + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """Exact Jaccard similarity of two sets; 1.0 for two empty sets."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class _UnionFind:
    """Disjoint sets over 0..n-1 with path halving."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)


def _join_exact(normalised: list[str], groups: _UnionFind) -> list[int]:
    """Union texts whose normalised form hashes equal; return the first index of each form."""
    first: dict[bytes, int] = {}
    for i, text in enumerate(normalised):
        key = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
        if key in first:
            groups.union(i, first[key])
        else:
            first[key] = i
    return list(first.values())


def _join_near(
    sets: dict[int, set[str]],
    groups: _UnionFind,
    *,
    threshold: float,
    lsh_threshold: float,
    num_perm: int,
    seed: int,
) -> None:
    """Union texts whose LSH candidates pass the exact Jaccard check against `threshold`."""
    ids = list(sets)
    encoded = [[s.encode("utf-8") for s in sets[i]] for i in ids]
    minhashes = MinHash.bulk(encoded, num_perm=num_perm, seed=seed)
    lsh = MinHashLSH(threshold=lsh_threshold, num_perm=num_perm)
    with lsh.insertion_session() as session:
        for i, minhash in zip(ids, minhashes, strict=True):
            session.insert(i, minhash)
    for i, minhash in zip(ids, minhashes, strict=True):
        for j in lsh.query(minhash):
            if j > i and jaccard(sets[i], sets[j]) >= threshold:
                groups.union(i, j)


def _representatives(groups: _UnionFind, n: int, quality: list[float] | None) -> list[int | None]:
    """Point every member of a group at its best member: highest quality, then lowest index."""
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        members[groups.find(i)].append(i)
    result: list[int | None] = [None] * n
    for group in members.values():
        keep = min(group) if quality is None else max(group, key=lambda i: (quality[i], -i))
        for i in group:
            result[i] = None if i == keep else keep
    return result


def find_duplicates(
    texts: list[str],
    quality: list[float] | None = None,
    *,
    threshold: float = 0.8,
    lsh_threshold: float = 0.7,
    num_perm: int = 128,
    ngram: int = 5,
    seed: int = 1,
) -> list[int | None]:
    """Map each text to the index of the kept text it duplicates, or None if it is kept.

    Exact duplicates share a normalised form (casefolded, punctuation and whitespace collapsed;
    all blank or punctuation-only texts are one group). Near duplicates have word-`ngram` shingle
    sets with exact Jaccard >= `threshold`, among candidates from MinHash LSH at `lsh_threshold`
    (keep it below `threshold` so LSH misses few true pairs). Groups are transitive. In each group
    the text with the highest `quality` is kept (ties: lowest index; no quality: lowest index).
    Deterministic for a given `seed`. Raises ValueError if `quality` has the wrong length or a
    threshold is outside (0, 1].
    """
    if quality is not None and len(quality) != len(texts):
        raise ValueError(f"quality has {len(quality)} values for {len(texts)} texts")
    for name, value in (("threshold", threshold), ("lsh_threshold", lsh_threshold)):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{name} must be in (0, 1], got {value}")
    normalised = [normalise(t) for t in texts]
    groups = _UnionFind(len(texts))
    unique = _join_exact(normalised, groups)
    sets = {i: shingles(normalised[i], ngram) for i in unique}
    if sets:
        _join_near(
            sets,
            groups,
            threshold=threshold,
            lsh_threshold=lsh_threshold,
            num_perm=num_perm,
            seed=seed,
        )
    return _representatives(groups, len(texts), quality)

"""Exact and near-duplicate detection: MinHash LSH proposes candidates, exact Jaccard decides.

LSH alone at 0.8 measured recall 0.79 / precision 0.89; a looser LSH band (0.7) followed by an
exact Jaccard check of the shingle sets measured recall 0.97 / precision 1.00 (MEASURED.md).
Signatures are datasketch's MinHash (its permutations and finaliser, bit-identical to
`MinHash.bulk`) computed for all texts at once with numpy, over n-gram hashes built with numpy;
the LSH banding runs on the whole signature matrix (datasketch's per-record objects and
MinHashLSH insert/query were the slow part: bench/dedup.py).
Matching against a previous version and decontamination live in `reference.py`.
"""

import hashlib
import itertools
import re
import unicodedata
import zlib
from collections import defaultdict

import numpy as np
from datasketch import MinHash
from datasketch.lsh import _optimal_param
from datasketch.minhash import _fmix

SCORER_VERSION = "dedup-2"

_PUNCT = re.compile(r"[^\w\s]|_")


def normalise(text: str) -> str:
    """NFKC, casefold, turn punctuation into spaces, collapse whitespace; "" for blank text."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCT.sub(" ", folded).split())


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


_MIX = np.uint64(0x9E3779B97F4A7C15)


class _WordHashes(dict):
    """word -> crc32, computed on first lookup (dict lookups stay in C for repeated words)."""

    def __missing__(self, word: str) -> int:
        self[word] = value = zlib.crc32(word.encode("utf-8"))
        return value


def _combine(h: np.ndarray, width: int) -> np.ndarray:
    """Hash of each run of `width` consecutive word hashes (len(h) - width + 1 values)."""
    acc = np.zeros(len(h) - width + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(width):
            acc = acc * _MIX + h[k : k + len(acc)] + np.uint64(k + 1)
        acc ^= acc >> np.uint64(31)
        acc *= _MIX
    return acc


def shingle_hashes(normalised: list[str], ngram: int) -> list[np.ndarray]:
    """Per text, the word n-grams of `shingles` as 64-bit hashes (crc32 per distinct
    word, n-grams combined with numpy over all texts at once). Equal n-grams hash equal and a
    collision between different ones is ~2^-64, so Jaccard on these equals Jaccard on the strings;
    it is several times cheaper than building the strings."""
    split = [t.split() for t in normalised]
    flat = np.fromiter(map(_WordHashes().__getitem__, itertools.chain.from_iterable(split)), dtype=np.uint64)
    ends = np.cumsum([len(words) for words in split])
    grams = _combine(flat, ngram) if len(flat) >= ngram else np.zeros(0, dtype=np.uint64)
    out = []
    for words, end in zip(split, ends.tolist(), strict=True):
        start = end - len(words)
        if len(words) >= ngram:  # n-grams starting in this text and ending inside it
            out.append(grams[start : end - ngram + 1])
        else:  # the whole text is one shingle, as in `shingles`
            out.append(_combine(flat[start:end], len(words)) if words else np.zeros(1, dtype=np.uint64))
    return out


def jaccard_hashes(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard of two shingle-hash arrays taken as sets (repeats count once)."""
    a, b = np.unique(a), np.unique(b)
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


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


def fold32(h: np.ndarray) -> np.ndarray:
    """64-bit shingle hashes folded to the 32-bit values datasketch's affine32 MinHash hashes."""
    return ((h ^ (h >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def signatures(hashed: list[np.ndarray], *, num_perm: int, seed: int, block: int = 1024) -> np.ndarray:
    """MinHash signatures, one row of `num_perm` values per shingle-hash array: bit-identical to
    datasketch's `MinHash.bulk([fold32(h).tolist() ...], hashfunc=int)` (same permutations, same
    finaliser; tested), computed for all texts at once with numpy: per-record MinHash objects
    were most of the step's time. Every array must be non-empty."""
    if not hashed:
        return np.zeros((0, num_perm), dtype=np.uint64)
    a, b = MinHash(num_perm=num_perm, seed=seed).permutations
    flat = _fmix(fold32(np.concatenate(hashed)), 32)
    starts = np.r_[0, np.cumsum([len(h) for h in hashed])[:-1]]
    out = np.empty((len(hashed), num_perm), dtype=np.uint32)
    first = 0  # blocks of whole docs, ~`block` shingles: the block x num_perm product stays in cache
    while first < len(hashed):
        last = int(np.searchsorted(starts, starts[first] + block, side="right"))
        last = max(last, first + 1)
        lo, hi = starts[first], (starts[last] if last < len(hashed) else len(flat))
        with np.errstate(over="ignore"):
            phv = flat[lo:hi, None] * a + b
        out[first:last] = np.minimum.reduceat(phv, starts[first:last] - lo, axis=0)
        first = last
    return out.astype(np.uint64)


def _band_keys(sig: np.ndarray, lsh_threshold: float) -> np.ndarray:
    """One 64-bit key per (row, band): datasketch's optimal bands for the threshold, each band's
    values folded by a fixed multiply-add (collisions only add candidates: each is verified)."""
    bands, rows = _optimal_param(lsh_threshold, sig.shape[1], 0.5, 0.5)
    weights = np.random.default_rng(0).integers(1, 2**63, size=rows, dtype=np.uint64) | 1
    with np.errstate(over="ignore"):
        return np.stack(
            [(sig[:, b * rows : (b + 1) * rows] * weights).sum(axis=1) for b in range(bands)],
            axis=1,
        )


def candidate_pairs(sig: np.ndarray, lsh_threshold: float) -> set[tuple[int, int]]:
    """Row pairs (i < j) sharing at least one LSH band bucket."""
    pairs: set[tuple[int, int]] = set()
    if len(sig) < 2:
        return pairs
    keys = _band_keys(sig, lsh_threshold)
    for band in keys.T:
        order = np.argsort(band, kind="stable")
        ranked = band[order]
        starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
        ends = np.r_[starts[1:], len(ranked)]
        for lo, hi in zip(starts[ends - starts > 1], ends[ends - starts > 1], strict=True):
            members = sorted(order[lo:hi].tolist())
            pairs.update(itertools.combinations(members, 2))
    return pairs


def _join_near(
    sets: dict[int, np.ndarray],
    groups: _UnionFind,
    *,
    threshold: float,
    lsh_threshold: float,
    num_perm: int,
    seed: int,
) -> None:
    """Union texts whose LSH candidates pass the exact Jaccard check against `threshold`."""
    ids = list(sets)
    sig = signatures([sets[i] for i in ids], num_perm=num_perm, seed=seed)
    for a, b in candidate_pairs(sig, lsh_threshold):
        if jaccard_hashes(sets[ids[a]], sets[ids[b]]) >= threshold:
            groups.union(ids[a], ids[b])


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
    sets = dict(zip(unique, shingle_hashes([normalised[i] for i in unique], ngram), strict=True))
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

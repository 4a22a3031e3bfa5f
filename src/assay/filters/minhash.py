"""Text -> sets of shingle hashes -> MinHash signatures, the per-document half of dedup.

Everything here works on one batch of texts at a time and keeps nothing between batches, so it
runs the same on a whole frame, on a Parquet row group, or inside Ray Data's `map_batches`.
Signatures are datasketch's MinHash (its permutations and finaliser, bit-identical to
`MinHash.bulk`) computed for a whole batch with numpy, over n-gram hashes built with numpy.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
import zlib

import numpy as np
from datasketch import MinHash
from datasketch.minhash import _fmix

_PUNCT = re.compile(r"[^\w\s]|_")
_MIX = np.uint64(0x9E3779B97F4A7C15)


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


def exact_key(normalised: str) -> int:
    """64-bit content key of a normalised text: equal forms, equal keys (a collision between
    different forms is ~2^-64 per pair)."""
    return int.from_bytes(hashlib.blake2b(normalised.encode("utf-8"), digest_size=8).digest(), "little")


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
    """Per text, its word n-grams (`shingles`, in text order, repeats included) as 64-bit hashes
    (crc32 per distinct word, n-grams combined with numpy over the batch). Equal n-grams hash
    equal and a collision between different ones is ~2^-64, so Jaccard on these equals Jaccard on
    the strings. Never empty: a blank text is the one shingle ""."""
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


def shingle_sets(normalised: list[str], ngram: int) -> list[np.ndarray]:
    """`shingle_hashes` as sets: sorted arrays of distinct hashes, made once per text so that
    every Jaccard on them is a binary search, not a sort (verification compares a text with
    several candidates)."""
    return [np.unique(h) for h in shingle_hashes(normalised, ngram)]


def _distinct_sorted(h: np.ndarray) -> np.ndarray:
    return h if len(h) < 2 or bool((h[1:] > h[:-1]).all()) else np.unique(h)


def jaccard_hashes(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard of two shingle-hash arrays taken as sets (repeats count once). Fast path for
    `shingle_sets` arrays: binary search of the shorter in the longer, no sort."""
    a, b = _distinct_sorted(a), _distinct_sorted(b)
    if len(a) > len(b):
        a, b = b, a
    if not len(a):
        return 1.0 if not len(b) else 0.0
    at = np.searchsorted(b, a)
    at[at == len(b)] = 0
    inter = int(np.count_nonzero(b[at] == a))
    return inter / (len(a) + len(b) - inter)


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

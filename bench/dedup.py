"""Dedup speed and quality on synthetic samples with planted near-duplicates.

Prints docs/s of assay's dedup step (`find_duplicates`: normalise, exact hash, MinHash.bulk,
numpy LSH banding, exact-Jaccard verify) and of a naive per-record datasketch loop doing the same
job (MinHash().update per shingle, MinHashLSH insert then query per record, same verify), measured
in the same run, their ratio, and recall/precision of the grouping against exact Jaccard on
sampled pairs (see `quality`).

    python bench/dedup.py            # 100k docs, naive loop on a 20k subset (extrapolated per doc)
    python bench/dedup.py --n 20000 --naive-n 20000
    python bench/dedup.py --n 5000 --naive-n 1000 --words 600 660   # long texts (~630 words)
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import time

from datasketch import MinHash, MinHashLSH

from assay.filters.dedup import find_duplicates, jaccard, normalise, shingles


def synthetic(n: int, dup_share: float, seed: int, length: tuple[int, int] = (30, 90)) -> tuple[list[str], list[int]]:
    """`n` texts of `length` (min, max) words over a Zipf-like vocabulary; `dup_share` of them are
    copies of an earlier text with 1-6 word edits (replace, insert, delete), 1-6 per 60 words on
    long texts. Returns (texts, source index or -1)."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(20000)]
    cum = list(itertools.accumulate(1 / (i + 10) for i in range(len(vocab))))
    edits = max(1, length[1] // 90)
    texts: list[str] = []
    source: list[int] = []
    for i in range(n):
        if i > 10 and rng.random() < dup_share:
            j = rng.randrange(i)
            words = texts[j].split()
            for _ in range(rng.randint(1, 6) * edits):
                op, k = rng.random(), rng.randrange(len(words))
                if op < 0.5:
                    words[k] = rng.choice(vocab)
                elif op < 0.75:
                    words.insert(k, rng.choice(vocab))
                elif len(words) > 10:
                    del words[k]
            texts.append(" ".join(words))
            source.append(j)
        else:
            texts.append(" ".join(rng.choices(vocab, cum_weights=cum, k=rng.randint(*length))))
            source.append(-1)
    return texts, source


def naive(texts: list[str], threshold: float, lsh_threshold: float, num_perm: int, ngram: int) -> list[int]:
    """The per-record datasketch loop; returns each text's group representative (union-find)."""
    sets = [shingles(normalise(t), ngram) for t in texts]
    lsh = MinHashLSH(threshold=lsh_threshold, num_perm=num_perm)
    minhashes = []
    for i, shingle_set in enumerate(sets):
        m = MinHash(num_perm=num_perm, seed=1)
        for s in shingle_set:
            m.update(s.encode("utf-8"))
        lsh.insert(i, m)
        minhashes.append(m)
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, m in enumerate(minhashes):
        for j in lsh.query(m):
            if j > i and jaccard(sets[i], sets[j]) >= threshold:
                parent[find(i)] = find(j)
    return [find(i) for i in range(len(texts))]


def quality(texts: list[str], dup_of: list[int | None], source: list[int], threshold: float, ngram: int,
            n_random: int, seed: int) -> tuple[float, float, int]:
    """(recall, precision, true pairs) against exact Jaccard. Recall: of the true pairs (>=
    threshold) among every planted pair plus `n_random` random pairs, the share where not both
    texts are kept. Precision: of the dropped texts (up to 5,000), the share whose Jaccard to the
    text it was dropped for reaches the threshold (transitive groups drop texts below it)."""
    rng = random.Random(seed)
    pairs = {(j, i) for i, j in enumerate(source) if j >= 0}
    pairs |= {tuple(sorted(rng.sample(range(len(texts)), 2))) for _ in range(n_random)}
    sets: dict[int, set[str]] = {}

    def s(i: int) -> set[str]:
        if i not in sets:
            sets[i] = shingles(normalise(texts[i]), ngram)
        return sets[i]

    truth = [p for p in pairs if jaccard(s(p[0]), s(p[1])) >= threshold]
    recall = sum(dup_of[a] is not None or dup_of[b] is not None for a, b in truth) / max(1, len(truth))
    dropped = [i for i, d in enumerate(dup_of) if d is not None]
    dropped = rng.sample(dropped, min(5000, len(dropped)))
    precision = sum(jaccard(s(i), s(dup_of[i])) >= threshold for i in dropped) / max(1, len(dropped))
    return recall, precision, len(truth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="documents for assay's dedup step")
    ap.add_argument("--naive-n", type=int, default=20_000, help="documents for the naive loop (its docs/s is per doc)")
    ap.add_argument("--dup-share", type=float, default=0.2, help="share of planted near-duplicates")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--words", type=int, nargs=2, default=(30, 90), metavar=("MIN", "MAX"), help="words per text")
    ap.add_argument("--json", help="also write the figures here (bench/scale.py reads them)")
    args = ap.parse_args()
    cfg = {"threshold": 0.8, "lsh_threshold": 0.7, "num_perm": 128, "ngram": 5}
    texts, source = synthetic(args.n, args.dup_share, args.seed, tuple(args.words))
    # CPU time of this (single-threaded) process: the machine is shared, wall time is noisy
    start, wall = time.process_time(), time.perf_counter()
    reps = find_duplicates(texts, **cfg)
    fast_s, fast_wall = time.process_time() - start, time.perf_counter() - wall
    m = min(args.naive_n, args.n)
    start, wall = time.process_time(), time.perf_counter()
    naive_groups = naive(texts[:m], **cfg)
    naive_s, naive_wall = time.process_time() - start, time.perf_counter() - wall
    fast_rate, naive_rate = args.n / fast_s, m / naive_s
    r, p, true_pairs = quality(texts, reps, source, cfg["threshold"], cfg["ngram"], 20_000, args.seed)
    naive_dup = [None if g == i else g for i, g in enumerate(naive_groups)]
    nr, np_, _ = quality(texts[:m], naive_dup, source[:m], cfg["threshold"], cfg["ngram"], 20_000, args.seed)
    print(f"docs: {args.n} ({sum(s >= 0 for s in source)} planted near-duplicates), naive loop on {m}")
    print(f"assay dedup step: {fast_s:.1f} s CPU ({fast_wall:.1f} s wall), {fast_rate:,.0f} docs/s, "
          f"removed {sum(x is not None for x in reps)}")
    print(f"naive datasketch loop: {naive_s:.1f} s CPU ({naive_wall:.1f} s wall), {naive_rate:,.0f} docs/s")
    print(f"speed-up: {fast_rate / naive_rate:.1f}x (CPU time), {(args.n / fast_wall) / (m / naive_wall):.1f}x (wall)")
    print(f"assay vs exact Jaccard >= {cfg['threshold']} ({true_pairs} true pairs sampled): "
          f"recall {r:.3f} (not both kept), precision {p:.3f} (dropped text >= threshold to its keeper)")
    print(f"naive loop vs exact Jaccard (first {m} docs): recall {nr:.3f}, precision {np_:.3f}")
    if args.json:
        figures = {"n": args.n, "naive_n": m, "words": list(args.words), "assay_docs_s": round(fast_rate),
                   "naive_docs_s": round(naive_rate), "speedup": round(fast_rate / naive_rate, 1),
                   "recall": round(r, 3), "precision": round(p, 3), "naive_recall": round(nr, 3),
                   "naive_precision": round(np_, 3)}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f)


if __name__ == "__main__":
    main()

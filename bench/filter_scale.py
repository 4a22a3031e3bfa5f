"""Filter stage at scale: synthetic critiqued samples -> assay.filters.stream, peak RSS and time.

    python bench/filter_scale.py --n 1000000          # one size, one process: its own peak RSS
    python bench/filter_scale.py --n 10000 --json out.json

What runs: the gate rules (generation error, critique verdict, evidence), toxicity (profanity
backend, the model in the alt-profanity-check wheel), contamination/previous-version checks (no
reference files), near-duplicate dedup across all batches, the score cache (SQLite, fresh),
Parquet in and out. Off: PII (presidio + spaCy runs ~200 docs/s here: 80+ minutes at 1M; its
scores come back empty), injection (its sentence regexes ran ~1.5 ms/sample: 25 min at 1M), the
domain filter and semantic dedup (MiniLM embeddings), rewriting (LLM). Samples are short
(a 6-10 word question, a 20-60 word answer); ~20% are near or exact copies of an earlier one.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from assay.config import Filter
from assay.filters import scoring
from assay.filters.scores import ScoreCache
from assay.filters.scoring import Scores
from assay.filters.stream import filter_stream
from assay.records import messages_text

CFG = Filter.model_validate({"pii": {"entities": ["EMAIL_ADDRESS"]}, "domain": {"enabled": False},
                             "injection": {"enabled": False},
                             "dedup": {"semantic": {"enabled": False}}})
VOCAB = [f"w{i}" for i in range(30_000)]
CUM = list(__import__("itertools").accumulate(1 / (i + 10) for i in range(len(VOCAB))))


def write_samples(path: Path, n: int, seed: int, chunk: int = 50_000) -> None:
    """`n` critiqued samples, written `chunk` rows at a time (the generator holds one chunk)."""
    rng = random.Random(seed)
    recent: list[tuple[str, str]] = []  # copies come from the last 2,000 samples: memory stays flat here too
    writer = None
    for start in range(0, n, chunk):
        rows = []
        for i in range(start, min(n, start + chunk)):
            if recent and rng.random() < 0.2:
                question, answer = rng.choice(recent)
                words = answer.split()
                for _ in range(rng.randint(0, 2)):
                    words[rng.randrange(len(words))] = rng.choice(VOCAB)
                answer = " ".join(words)
            else:
                question = " ".join(rng.choices(VOCAB, cum_weights=CUM, k=rng.randint(6, 10))) + "?"
                answer = " ".join(rng.choices(VOCAB, cum_weights=CUM, k=rng.randint(20, 60)))
            recent.append((question, answer))
            if len(recent) > 4000:
                del recent[:2000]
            rows.append({"id": f"s{i}", "task": "qa", "seed_ids": [f"c{i % 500}"], "evidence": [answer[:40]],
                         "evidence_ok": rng.random() > 0.02, "generation": "{}",
                         "error": "HTTP 500" if rng.random() < 0.01 else None, "raw": None, "critique": "{}",
                         "score": round(rng.uniform(1, 5), 2), "verdict": "accept" if rng.random() > 0.1 else "reject",
                         "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]})
        table = pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def cheap_scores(samples, chunks, cfg, cache, rewriter) -> Scores:
    """assay.filters.scoring.score without its model-based scorers (PII comes back empty)."""
    texts = [messages_text(p) for p in scoring._parts(samples)]
    toxic, backend = scoring.toxicity_scorer(cfg, cache)
    out = Scores(pii=[[] for _ in texts], toxicity=toxic(texts), toxicity_backend=backend)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--batch-rows", type=int, default=10_000)
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        child = multiprocessing.get_context("fork").Process(target=write_samples, args=(tmp / "samples.parquet", args.n, 0))
        child.start()  # in a child process: its memory does not count in this one's peak RSS
        child.join()
        cheap_scores(pd.DataFrame({"messages": [[]], "evidence": [[]]}), None, CFG, ScoreCache(tmp / "warm"), None)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # after loading the profanity model
        cache = ScoreCache(tmp / "cache")
        start, wall = time.process_time(), time.perf_counter()
        out = filter_stream(tmp / "samples.parquet", pd.DataFrame({"chunk_id": [], "text": []}), CFG, cache,
                            {"recheck": lambda texts: [[] for _ in texts]}, tmp / "a.parquet", tmp / "r.parquet",
                            batch_rows=args.batch_rows, score_fn=cheap_scores)
        cpu, wall = time.process_time() - start, time.perf_counter() - wall
        cache.close()
    result = {"n": args.n, "cpu_s": round(cpu, 1), "wall_s": round(wall, 1),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
              "rss_before_mb": round(rss_before / 1024), "accepted": out["accepted"],
              "duplicates": out.get("reason.duplicate", 0)}
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()

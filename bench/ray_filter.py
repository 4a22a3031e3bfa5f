"""The filter stage, `executor: local` vs `executor: ray` (2 worker actors on a local 2-node cluster),
same synthetic input (bench/filter_scale.py's samples and cheap scorers), outputs compared.

    python bench/ray_filter.py --n 100000 --shard-rows 10000 2500 10000 --json out.json

Both runs take the whole-frame path (assay.filters.pipeline.run_filter: the stage's path under
`executor: ray`; local streaming is not used here so the two do the same work): local scores in
this process; ray runs assay.scale.filter.filter_scores (Ray Data actor pool, score cache actor)
and the decision here. The scorers are filter_scale's cheap set (toxicity; PII comes back empty)
in both. The cluster (`ray start`, one CPU per node) is started here and every process of it is
killed by pid at the end (never `ray stop`: it would kill other users' Ray). CPU seconds of the
cluster's processes are sampled from /proc every 0.2 s (actors exit before the end). One ray run
per `--shard-rows`, in that order, on the same cluster: the difference is the cost of more shards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import filter_scale
import pandas as pd

from assay.config import Params
from assay.filters import pipeline
from assay.filters.scores import ScoreCache
from assay.scale.local_cluster import local_cluster, processes


def cheap_work(shard, models, scores, ctx):
    """assay.scale.filter.filter_work with filter_scale's cheap scorers."""
    return filter_scale.cheap_scores(shard, ctx["chunks"], ctx["params"].filter, scores, None), None


class Sampler(threading.Thread):
    """The last CPU seconds seen for every process of the cluster, from `start` on."""

    def __init__(self, temp: Path):
        super().__init__(daemon=True)
        self.temp, self.stop, self.last = temp, threading.Event(), {}
        self.base = {p: cpu for p, (_, cpu) in processes(temp).items()}

    def run(self) -> None:
        while not self.stop.is_set():
            self.last.update(processes(self.temp))
            time.sleep(0.2)

    def totals(self) -> dict[str, float]:
        self.stop.set()
        self.join()
        out = {"shard_actors": 0.0, "cache_actors": 0.0, "other_ray": 0.0}
        for pid, (cmd, cpu) in self.last.items():
            kind = ("shard_actors" if "ShardWorker" in cmd or "MapWorker" in cmd else
                    "cache_actors" if any(k in cmd for k in ("ScoreCache", "_Responses", "LimiterActor")) else "other_ray")
            out[kind] += cpu - self.base.get(pid, 0.0)
        return {k: round(v, 1) for k, v in out.items()}


def params(cache_dir: Path, executor: str, shard_rows: int) -> Params:
    cfg = filter_scale.CFG.model_dump(mode="json") | {"rewrite": {"enabled": False}}
    cfg["pii"]["eval_samples"] = 0
    return Params.model_validate({
        "executor": executor, "ray": {"shard_rows": shard_rows, "actors": 2},
        "llm": {"cache_dir": str(cache_dir), "endpoints": {"none": {"base_url": "http://127.0.0.1:9", "model": "none"}}},
        "generate": {"endpoint": "none"}, "critique": {"judges": ["none"]}, "filter": cfg,
        "export": {"dataset_name": "bench"}})


def run(samples: pd.DataFrame, tmp: Path, executor: str, shard_rows: int, session_of=None):
    tmp.mkdir(exist_ok=True)
    p = params(tmp / f"cache-{executor}", executor, shard_rows)
    chunks = pd.DataFrame({"chunk_id": [], "text": []})
    cache = ScoreCache(p.llm.cache_dir)
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        if session_of is None:
            decided, metrics = pipeline.run_filter(samples, chunks, p, cache, tmp / "r.jsonl")
        else:
            with session_of(p) as session:
                opened = time.perf_counter() - wall
                decided, metrics = pipeline.run_filter(samples, chunks, p, cache, tmp / "r.jsonl", session)
    finally:
        cache.close()
    out = {"driver_cpu_s": round(time.process_time() - cpu, 1), "wall_s": round(time.perf_counter() - wall, 1),
           "accepted": metrics["accepted"], "rejected": metrics["rejected"]}
    if session_of is not None:
        out["session_start_s"] = round(opened, 1)
    return decided, out


def same_rows(local: pd.DataFrame, ray_out: pd.DataFrame) -> dict[str, bool]:
    """Accepted rows, rejected rows, and all decided rows and columns: equal in both runs?"""
    kept = {name: frame["reasons"].map(len) == 0 for name, frame in (("local", local), ("ray", ray_out))}
    same = {part: local[k].reset_index(drop=True).equals(ray_out[r].reset_index(drop=True))
            for part, (k, r) in {"accepted": (kept["local"], kept["ray"]),
                                 "rejected": (~kept["local"], ~kept["ray"])}.items()}
    return same | {"decided": ray_out.reset_index(drop=True).equals(local.reset_index(drop=True))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--shard-rows", type=int, nargs="+", default=[10_000, 2_500, 10_000])
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args()
    import ray.cloudpickle

    from assay.llm import Ledger
    from assay.scale import filter as ray_filter
    from assay.scale import ray_session

    ray.cloudpickle.register_pickle_by_value(filter_scale)  # the actors cannot import bench/
    pipeline.score = filter_scale.cheap_scores  # both paths: the cheap scorer set
    ray_filter.filter_work = cheap_work
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="rb", dir="/tmp") as tmp:  # short: Ray's socket paths
        tmp = Path(tmp)
        filter_scale.write_samples(tmp / "samples.parquet", args.n, 0)
        samples = pd.read_parquet(tmp / "samples.parquet")
        local, result_local = run(samples, tmp, "local", 1)
        print("local:", result_local, file=sys.stderr, flush=True)
        started = time.perf_counter()
        with local_cluster(tmp / "ray", object_store_mb=300) as address:
            cluster_s = time.perf_counter() - started
            os.environ["RAY_ADDRESS"] = address
            rays = []
            for i, rows in enumerate(args.shard_rows):
                sampler = Sampler(tmp / "ray")
                sampler.start()
                ray_out, result_ray = run(samples, tmp / f"ray{i}", "ray", rows, lambda p: ray_session(p, [], Ledger()))
                result_ray |= sampler.totals() | {"shard_rows": rows, "shards": -(-args.n // rows),
                                                  "identical": same_rows(local, ray_out)}
                print("ray:", result_ray, file=sys.stderr, flush=True)
                rays.append(result_ray)
            ray.shutdown()
    result = {"n": args.n, "cluster_start_s": round(cluster_s, 1),
              "load_before": load, "load_after": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
              "local": result_local, "ray": rays}
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()

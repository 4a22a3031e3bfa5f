"""`make bench`: the scale figures in one run, written to bench/results.md.

Runs, each in its own process (so that each peak RSS is its own): the streaming filter at 10k,
100k and 1M synthetic samples (bench/filter_scale.py), dedup vs a naive datasketch loop on short
and on long texts (bench/dedup.py), and generate tokens/s through assay's client vs a raw load
on the embedded server (bench/llm_throughput.py), and the filter with `executor: ray` (2 actors on
a local 2-node cluster) vs local on the same 100k samples (bench/ray_filter.py). Times are CPU seconds of the measured process
where the script reports them: the machine is shared, wall time is noisy (load average recorded).

    python bench/scale.py                 # everything (~45 min on 2 busy cores)
    python bench/scale.py --sizes 10000 100000 --skip-llm
    python bench/scale.py --only ray      # just the Ray vs local row (~3 min), into the existing file
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(args: list[str]) -> str:
    """Run a bench script with this Python; its stdout (stderr passes through)."""
    print("$", " ".join(args), file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, *args], cwd=HERE.parent, stdout=subprocess.PIPE, text=True, check=True)
    return done.stdout


def filter_rows(sizes: list[int], tmp: Path) -> list[dict]:
    rows = []
    for n in sizes:
        out = tmp / f"filter-{n}.json"
        run([str(HERE / "filter_scale.py"), "--n", str(n), "--json", str(out)])
        rows.append(json.loads(out.read_text(encoding="utf-8")))
    return rows


def dedup_rows(tmp: Path, short: tuple[int, int], long: tuple[int, int]) -> list[dict]:
    rows = []
    for name, (n, naive_n), words in (("short (30-90 words)", short, (30, 90)),
                                      ("long (600-660 words)", long, (600, 660))):
        out = tmp / f"dedup-{n}.json"
        run([str(HERE / "dedup.py"), "--n", str(n), "--naive-n", str(naive_n), "--words", *map(str, words),
             "--json", str(out)])
        rows.append({"texts": name, **json.loads(out.read_text(encoding="utf-8"))})
    return rows


def llm_row(requests: int) -> dict | None:
    """assay client vs raw openai load, parsed from bench/llm_throughput.py's report."""
    try:
        text = run([str(HERE / "llm_throughput.py"), "--requests", str(requests), "--slots", "4", "--max-tokens", "64"])
    except subprocess.CalledProcessError as exc:
        print(f"llm_throughput failed (exit {exc.returncode}); its row says so", file=sys.stderr)
        return None
    rates = re.findall(r"= ([\d.]+) tok/s", text)
    ratio = re.search(r"ratio assay/raw : ([\d.]+)", text)
    return {"raw": float(rates[0]), "assay": float(rates[1]), "ratio": float(ratio.group(1))} if ratio else None


def ray_vs_local(tmp: Path, n: int, shard_rows: list[int]) -> dict | None:
    """The filter stage with `executor: local` vs `executor: ray` (2 actors on a local 2-node
    cluster), same input, outputs compared; one ray run per shard size (bench/ray_filter.py)."""
    out = tmp / "ray.json"
    try:
        run([str(HERE / "ray_filter.py"), "--n", str(n), "--shard-rows", *map(str, shard_rows), "--json", str(out)])
    except subprocess.CalledProcessError as exc:
        print(f"ray_filter failed (exit {exc.returncode}); its row says so", file=sys.stderr)
        return None
    return json.loads(out.read_text(encoding="utf-8"))


RAY_HEADER = "## Ray (2 local workers) vs local"


def _ray_cpu(r: dict) -> float:
    return r["driver_cpu_s"] + r["shard_actors"] + r["cache_actors"] + r["other_ray"]


def ray_section(ray: dict | None) -> list[str]:
    lines = [RAY_HEADER, ""]
    if not ray:
        return lines + ["Not measured (bench/ray_filter.py failed or was not run: `python bench/scale.py --only ray`)."]
    loc = ray["local"]
    lines += [f"`python bench/scale.py --only ray` (bench/ray_filter.py): {ray['n']:,} synthetic samples "
              f"(filter_scale's data), filter_scale's cheap scorers (toxicity; PII empty), rewrite off. Both take "
              f"the whole-frame path (`run_filter`: what `executor: ray` runs; local streaming not used). Ray: "
              f"a head + a worker node started with `ray start` (1 CPU each; {ray['cluster_start_s']} s, not "
              f"counted below), 2 ShardWorker actors; the decision (dedup) runs in the driver. CPU s of the "
              f"cluster's processes sampled from /proc. Load average before {ray['load_before']}, after "
              f"{ray['load_after']} (2 shared cores).", "",
              "| executor | shards | wall s | driver CPU s | shard actors CPU s | cache actors CPU s | other Ray CPU s | total CPU s | accepted | rejected | same rows as local |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
              f"| local | - | {loc['wall_s']} | {loc['driver_cpu_s']} | - | - | - | {loc['driver_cpu_s']} | "
              f"{loc['accepted']:,} | {loc['rejected']:,} | - |"]
    for i, r in enumerate(ray["ray"]):
        same = r["identical"]
        lines.append(f"| ray{' (cold)' if i == 0 else ''} | {r['shards']} x {r['shard_rows']:,} | {r['wall_s']} (session start {r['session_start_s']}) | "
                     f"{r['driver_cpu_s']} | {r['shard_actors']} | {r['cache_actors']} | {r['other_ray']} | "
                     f"{_ray_cpu(r):.1f} | {r['accepted']:,} | {r['rejected']:,} | accepted {same['accepted']}, "
                     f"rejected {same['rejected']}, all columns {same['decided']} |")
    warm = ray["ray"][1:] or ray["ray"]  # the first run also starts Ray's worker processes
    first, last = min(warm, key=lambda r: r["shards"]), max(warm, key=lambda r: r["shards"])
    lines += ["", f"Ray / local ({first['shards']} shards, warm): wall {first['wall_s'] / loc['wall_s']:.1f}x, CPU "
                  f"{_ray_cpu(first) / loc['driver_cpu_s']:.1f}x."]
    if last["shards"] != first["shards"]:
        extra = last["shards"] - first["shards"]
        lines[-1] += (f" Per extra shard ({first['shards']} -> {last['shards']}, warm runs): "
                      f"{(last['wall_s'] - first['wall_s']) / extra:+.2f} s wall, "
                      f"{(_ray_cpu(last) - _ray_cpu(first)) / extra:+.2f} CPU s (noisy: shared cores).")
    return lines


def replace_section(path: Path, section: list[str]) -> None:
    """Put `section` in place of the Ray section of `path` (up to the next heading or hand-added notes)."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    start = lines.index(RAY_HEADER) if RAY_HEADER in lines else len(lines)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("## ", "Notes (added by hand"))),
               len(lines))
    tail = ["", *lines[end:]] if end < len(lines) else []
    path.write_text("\n".join([*lines[:start], *section, *tail]) + "\n", encoding="utf-8")


def render(meta: dict, filters: list[dict], dedups: list[dict], llm: dict | None, ray: dict | None) -> str:
    lines = ["# Scale bench (`make bench`)", "",
             f"{meta['when']} UTC, {meta['machine']}; load average before {meta['load_before']}, after "
             f"{meta['load_after']} (the machine is shared: CPU seconds of the measured process are the "
             f"figure to read; wall time is noisy). Total run {meta['total_s']:.0f} s, under `nice -n 10`.", "",
             "## Filter, streaming (bench/filter_scale.py)", "",
             "Ran: gate rules, toxicity (profanity model), near-dup dedup across batches, score cache, "
             "Parquet in/out in 10k-row batches. Off: PII (presidio ~200 docs/s), injection, domain, "
             "semantic dedup, rewrite. Short samples, ~20% planted copies.", "",
             "| samples | CPU s | wall s | CPU µs/sample | peak RSS MB | accepted | near-dup dropped |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in filters:
        lines.append(f"| {r['n']:,} | {r['cpu_s']} | {r['wall_s']} | {1e6 * r['cpu_s'] / r['n']:.0f} | "
                     f"{r['peak_rss_mb']} | {r['accepted']:,} | {r['duplicates']:,} |")
    if len(filters) > 1:
        a, b = filters[0], filters[-1]
        lines += ["", f"CPU per sample at {b['n']:,} / at {a['n']:,}: "
                      f"{(b['cpu_s'] / b['n']) / (a['cpu_s'] / a['n']):.2f} (1.00 = linear)."]
    lines += ["", "## Dedup vs naive datasketch (bench/dedup.py)", "",
              "assay: normalise, exact key, numpy MinHash (bit-identical to MinHash.bulk), LSH band "
              "groupby, exact Jaccard on pre-sorted shingle sets, no chaining. Naive: MinHash.update per "
              "shingle, MinHashLSH insert + query, union-find. Recall: true pairs (exact Jaccard >= 0.8, "
              "planted + 20k random) not both kept; precision: dropped texts >= 0.8 to their keeper.", "",
              "| texts | docs | assay docs/s (CPU) | naive docs/s (CPU) | speed-up | recall | precision | naive recall | naive precision |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in dedups:
        lines.append(f"| {r['texts']} | {r['n']:,} (naive {r['naive_n']:,}) | {r['assay_docs_s']:,} | "
                     f"{r['naive_docs_s']:,} | {r['speedup']}x | {r['recall']} | {r['precision']} | "
                     f"{r['naive_recall']} | {r['naive_precision']} |")
    lines += ["", "## Generate throughput (bench/llm_throughput.py)", ""]
    lines.append(f"Embedded Qwen2.5-Coder-0.5B, 4 slots, 64 tokens per reply: raw openai load {llm['raw']} tok/s, "
                 f"assay client {llm['assay']} tok/s, ratio {llm['ratio']} (wall clock)." if llm else "Not measured (--skip-llm, or the embedded server failed: see the run's log).")
    lines += ["", *ray_section(ray)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--short", type=int, nargs=2, default=(50_000, 10_000), metavar=("N", "NAIVE_N"))
    ap.add_argument("--long", type=int, nargs=2, default=(3_000, 600), metavar=("N", "NAIVE_N"))
    ap.add_argument("--llm-requests", type=int, default=12)
    ap.add_argument("--skip-llm", action="store_true")
    ap.add_argument("--ray-n", type=int, default=100_000, help="samples for the Ray vs local row")
    ap.add_argument("--ray-shard-rows", type=int, nargs="+", default=[10_000, 2_500, 10_000],
                    help="one ray run per value, in order, on one cluster (the first starts its workers cold)")
    ap.add_argument("--only", choices=["ray"], help="run this row alone; replace its section in --out")
    ap.add_argument("--out", default=str(HERE / "results.md"))
    args = ap.parse_args()
    if args.only == "ray":
        with tempfile.TemporaryDirectory() as tmp:
            ray = ray_vs_local(Path(tmp), args.ray_n, args.ray_shard_rows)
        replace_section(Path(args.out), ray_section(ray))
        print(Path(args.out).read_text(encoding="utf-8"))
        return
    start, load_before = time.perf_counter(), ", ".join(f"{x:.1f}" for x in os.getloadavg())

    def write(filters: list[dict], dedups: list[dict], llm: dict | None, ray: dict | None = None) -> None:
        """(Re)write the results file: after each section, so a stopped run keeps what it measured."""
        meta = {"when": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                "machine": f"{os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}",
                "load_before": load_before, "load_after": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
                "total_s": time.perf_counter() - start}
        Path(args.out).write_text(render(meta, filters, dedups, llm, ray), encoding="utf-8")

    with tempfile.TemporaryDirectory() as tmp:
        filters = filter_rows(args.sizes, Path(tmp))
        write(filters, [], None)
        dedups = dedup_rows(Path(tmp), tuple(args.short), tuple(args.long))
        write(filters, dedups, None)
    llm = None if args.skip_llm else llm_row(args.llm_requests)
    write(filters, dedups, llm)
    with tempfile.TemporaryDirectory() as tmp:
        write(filters, dedups, llm, ray_vs_local(Path(tmp), args.ray_n, args.ray_shard_rows))
    print(Path(args.out).read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()

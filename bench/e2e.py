"""Cost of one pipeline run per generated and per exported sample, split by stage.

    python bench/e2e.py                      # the bundled seeds (data/seeds), params.yaml
    python bench/e2e.py --seeds my_docs/ --params params.yaml --out e2e.json

Copies the pipeline (dvc.yaml, params, stages, src, lessons) and the seeds into a fresh git + DVC
repository with an empty response cache, starts the embedded servers the params name (each in
its own process, announced where the stages look for a running server, with llama.cpp's /metrics
endpoint on), then runs `dvc repro -s <stage>` stage by stage. Per stage it prints wall time,
CPU-seconds of our processes (DVC, the stage, its children) and of the servers (read from
/proc/<pid>/stat), LLM calls and prompt / completion tokens (metrics/<stage>.json), and prompt
tokens the servers evaluated (llama.cpp /metrics: a KV-cache reuse shows as fewer evaluated than
sent); then the totals per generated and per exported sample, and the quality figures. The
machine is shared: CPU-seconds are the figure to compare, wall time is noisy (the load average
is printed)."""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
# llama.cpp serves /metrics only when asked; the stages never need it, the bench does
SERVE = ("import sys, xllamacpp\n"
         "_cp = xllamacpp.CommonParams\n"
         "def _with_metrics():\n"
         "    p = _cp(); p.endpoint_metrics = True; return p\n"
         "xllamacpp.CommonParams = _with_metrics\n"
         "from assay.llm.server import main\n"
         "main(sys.argv[1:])\n")
SERVER_FLAGS = {"n_parallel": "--n-parallel", "n_ctx": "--n-ctx", "threads": "--threads", "speculative": "--speculative",
                "draft": "--draft", "draft_max": "--draft-max", "poll": "--poll"}


def _env(repo: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "PYTHONPATH": str(repo / "src"), "ASSAY_STATE_DIR": str(repo / ".assay" / "servers"),
            "MLFLOW_TRACKING_URI": "", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DVC_NO_ANALYTICS": "1",
            "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""}


def make_repo(seeds: Path, params: Path, root: Path = ROOT) -> Path:
    """A fresh git + DVC repository holding the pipeline of `root` and `seeds` as data/seeds."""
    repo = Path(tempfile.mkdtemp(prefix="assay-e2e-"))
    for item in ("dvc.yaml", "stages", "src", "lessons"):
        (shutil.copytree if (root / item).is_dir() else shutil.copy)(root / item, repo / item)
    shutil.copy(params, repo / "params.yaml")
    shutil.copytree(seeds, repo / "data" / "seeds")
    (repo / "reviews").mkdir()  # filter's human-review folder (a DVC dep): none in a fresh run
    (repo / "reviews" / ".gitkeep").touch()
    (repo / ".gitignore").write_text(".assay/\nmlflow.db\nmlartifacts/\n__pycache__/\n")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=bench", "-c", "user.email=b@b", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=repo, env=_env(repo), check=True, capture_output=True)
    return repo


def endpoints_used(params: dict) -> dict[str, dict]:
    """Embedded endpoints any stage calls: {registry model: endpoint settings}."""
    c, g, f = params["critique"], params["generate"], params["filter"]
    names = [g["endpoint"], *c["judges"], c.get("reviser") or g["endpoint"]]
    if c.get("orchestrator") == "llm":
        names.append(c["orchestrator_endpoint"])
    if c["reward"]["kind"] == "llm":
        names.append(c["reward"]["endpoint"] or c["judges"][0])
    if f["rewrite"]["enabled"]:
        names.append(f["rewrite"]["endpoint"])
    eps = params["llm"]["endpoints"]
    return {eps[n]["embedded"]: eps[n] for n in dict.fromkeys(names) if eps[n].get("embedded")}


def start_servers(repo: Path, models: dict[str, dict]) -> dict[str, tuple[subprocess.Popen, str]]:
    """{model: (process, root url)}: each announced in ASSAY_STATE_DIR, so the stages reuse it."""
    out = {}
    for model, ep in models.items():
        state = repo / ".assay" / "servers" / f"{model}.json"
        args = ["--model", model, "--state", str(state), "--parent-pid", str(os.getpid())]  # never outlives the bench
        for key, flag in SERVER_FLAGS.items():
            if ep.get(key) is not None:
                args += [flag, str(ep[key])]
        log = (repo / f"server-{model}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-c", SERVE, *args], cwd=repo, env=_env(repo), stdout=log,
                                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                sys.exit(f"bench: server {model} exited; see {log.name}")
            if state.exists():
                url = json.loads(state.read_text())["base_url"].removesuffix("/v1")
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        out[model] = (proc, url)
    return out


def proc_cpu(pid: int) -> float:
    """utime + stime of a live process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def server_counters(url: str) -> dict[str, float]:
    """llama.cpp's cumulative counters: prompt tokens evaluated, tokens predicted, decode calls."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.findall(r"^llamacpp:(\w+) ([0-9.e+-]+)$", text, flags=re.M)
    return {k: float(v) for k, v in found}


def snapshot(servers: dict) -> dict[str, dict[str, float]]:
    return {m: {"cpu_s": proc_cpu(p.pid), **server_counters(url)} for m, (p, url) in servers.items()}


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_stage(repo: Path, stage: str, servers: dict) -> dict[str, float]:
    before, cpu0, t0 = snapshot(servers), children_cpu(), time.monotonic()
    done = subprocess.run(["dvc", "repro", "-s", stage], cwd=repo, env=_env(repo), capture_output=True, text=True)
    wall, ours = time.monotonic() - t0, children_cpu() - cpu0
    if done.returncode != 0:
        sys.exit(f"bench: stage {stage} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    after = snapshot(servers)
    metrics = json.loads((repo / "metrics" / f"{stage}.json").read_text())
    row = {"wall_s": wall, "cpu_ours_s": ours,
           "cpu_servers_s": sum(after[m]["cpu_s"] - before[m]["cpu_s"] for m in servers),
           "llm_calls": metrics.get("llm.model_calls", 0.0),
           "prompt_tokens": metrics.get("llm.prompt_tokens", 0.0),
           "completion_tokens": metrics.get("llm.completion_tokens", 0.0),
           # what the stage's ledger read from the servers' per-request timings (absent before this was recorded)
           "prompt_evaluated": metrics.get("llm.prompt_evaluated", float("nan")),
           "server_prompt_tokens": sum(after[m].get("prompt_tokens_total", 0) - before[m].get("prompt_tokens_total", 0)
                                       for m in servers),
           "predicted": sum(after[m].get("tokens_predicted_total", 0) - before[m].get("tokens_predicted_total", 0)
                            for m in servers)}
    for key in ("spec_decode_num_draft_tokens_total", "spec_decode_num_accepted_tokens_total"):
        row[key.removesuffix("_total")] = sum(after[m].get(key, 0) - before[m].get(key, 0) for m in servers)
    for model in servers:
        row[f"cpu_s.{model}"] = after[model]["cpu_s"] - before[model]["cpu_s"]
    return row


def quality(repo: Path) -> dict[str, float]:
    m = {s: json.loads((repo / "metrics" / f"{s}.json").read_text()) for s in ("generate", "critique", "filter", "export")}
    out = {"generated": m["generate"]["samples"], "generation_errors": m["generate"]["errors"],
           "critique_accepted": round(m["critique"]["accept_rate"] * m["critique"]["samples"]),
           "estimated_precision_accepted": m["critique"].get("estimated_precision_accepted"),
           "exported": m["export"]["rows"], "score_mean_exported": m["export"].get("score_mean")}
    out |= {k: v for k, v in m["filter"].items() if k.startswith("reason.")}
    out |= {f"critique.{k}": v for k, v in m["critique"].items() if re.match(r"round\d\.", k) or k == "judge_calls"}
    return out


def report(rows: dict[str, dict], setup: dict, q: dict) -> dict:
    cols = ["wall_s", "cpu_ours_s", "cpu_servers_s", "llm_calls", "prompt_tokens", "prompt_evaluated",
            "server_prompt_tokens", "completion_tokens", "predicted"]
    total = {c: sum(r[c] for r in rows.values() if r[c] == r[c]) + setup.get(c, 0.0) for c in cols}  # nan: not reported
    print(f"{'stage':<10}" + "".join(f"{c:>21}" for c in cols))
    for name, r in [("servers", setup), *rows.items(), ("total", total)]:
        print(f"{name:<10}" + "".join(f"{r.get(c, 0.0):>21.1f}" for c in cols))
    cpu = total["cpu_ours_s"] + total["cpu_servers_s"]
    per = {"cpu_s_per_generated": cpu / max(1, q["generated"]), "cpu_s_per_exported": cpu / max(1, q["exported"]),
           "wall_s_per_generated": total["wall_s"] / max(1, q["generated"]),
           "wall_s_per_exported": total["wall_s"] / max(1, q["exported"]),
           "prompt_evaluated_per_call": total["prompt_evaluated"] / max(1, total["llm_calls"]),
           "prompt_sent_per_call": total["prompt_tokens"] / max(1, total["llm_calls"]),
           # our processes' CPU (DVC, stages, client, parsing, presidio, embeddings, MLflow) vs the run's wall
           "non_llm_cpu_share_of_wall": total["cpu_ours_s"] / max(1e-9, total["wall_s"]),
           "non_llm_cpu_share_of_cpu": total["cpu_ours_s"] / max(1e-9, cpu)}
    print(json.dumps(q | {k: round(v, 3) for k, v in per.items()}, indent=1))
    return {"stages": rows, "setup": setup, "total": total, "per_sample": per, "quality": q}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=Path, default=ROOT / "data" / "seeds", help="seed folder (default: data/seeds)")
    ap.add_argument("--root", type=Path, default=ROOT,
                    help="the pipeline to run (another checkout, e.g. of the commit to compare with)")
    ap.add_argument("--params", type=Path, help="params file (default: <root>/params.yaml)")
    ap.add_argument("--out", type=Path, help="also write the figures here (JSON)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary repository")
    args = ap.parse_args()
    args.params = args.params or args.root / "params.yaml"
    params = yaml.safe_load(args.params.read_text())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: terminated"))  # still stops the servers
    repo = make_repo(args.seeds.resolve(), args.params.resolve(), args.root.resolve())
    print(f"bench: {repo}; load average {os.getloadavg()}", flush=True)
    cpu0, t0 = children_cpu(), time.monotonic()
    servers = start_servers(repo, endpoints_used(params))
    setup = {"wall_s": time.monotonic() - t0, "cpu_ours_s": children_cpu() - cpu0,
             "cpu_servers_s": sum(proc_cpu(p.pid) for p, _ in servers.values())}
    rows = {}
    try:
        stages = list(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])
        for stage in stages:
            rows[stage] = run_stage(repo, stage, servers)
            print(f"bench: {stage} {json.dumps({k: round(v, 1) for k, v in rows[stage].items()})}", flush=True)
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    result = report(rows, setup, quality(repo)) | {"load_average_end": os.getloadavg()}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    if not args.keep:
        shutil.rmtree(repo, ignore_errors=True)


if __name__ == "__main__":
    main()

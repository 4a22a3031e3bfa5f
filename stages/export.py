"""export: accepted samples -> Hugging Face dataset folder + card, reports for MLflow and
`dvc plots`, and an optional Hub push (see assay.export, assay.hub)."""

import json
import sys
from pathlib import Path

import pandas as pd

from assay.export import rejection_summary, sample_table, score_histogram, seed_hashes, write_export
from assay.llm import describe
from assay.records import FILTER_COLUMNS, read_table, write_json
from assay.release import release_tag, worktree_state
from assay.roles import endpoint_roles
from assay.stage import Outcome, run_stage

UPSTREAM = ("ingest", "generate", "critique", "filter")


def add_arguments(p):
    p.add_argument("--accepted", required=True, help="kept rows (filter)")
    p.add_argument("--rejected", required=True, help="rejected rows (filter)")
    p.add_argument("--seeds", required=True, help="seed folder (hashed into the card)")
    p.add_argument("--metrics-dir", required=True, help="where upstream stage metrics are")
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.add_argument("--reports", required=True, help="scores.csv, samples.json, rejections.json")


def body(args, params):
    accepted = read_table(args.accepted, FILTER_COLUMNS, "export")
    rejected = pd.read_parquet(args.rejected) if Path(args.rejected).is_file() else pd.DataFrame()
    stage_metrics = {s: json.loads((Path(args.metrics_dir) / f"{s}.json").read_text()) for s in UPSTREAM}
    roles = endpoint_roles(params.critique, params.generate.endpoint, params.filter.rewrite)
    models = [describe(n, params.llm.endpoints[n]) for n in roles.used()]
    if params.critique.reward.kind == "endpoint":
        models.append({"endpoint": "reward", "model": "HTTP scorer", "server": str(params.critique.reward.url)})
    e = params.export
    lineage = worktree_state(params_file=args.params) | {"seed_files": seed_hashes(args.seeds)}
    metrics = write_export(accepted, args.out, name=e.dataset_name, license=e.license,
                           description=e.description, params=params.model_dump(mode="json"),
                           models=models, stage_metrics=stage_metrics, splits=e.splits, lineage=lineage)
    reports = Path(args.reports)
    reports.mkdir(parents=True, exist_ok=True)
    score_histogram(accepted, rejected).to_csv(reports / "scores.csv", index=False)
    write_json({"rows": sample_table(args.out)}, reports / "samples.json")
    write_json(rejection_summary(rejected), reports / "rejections.json")
    if e.push_to_hub:
        from assay.hub import push

        metrics["hub.revision"] = push(args.out, e.hub_repo, private=e.private, tag=release_tag())
    parquet = sorted(Path(args.out, "data").glob("*.parquet"))
    splits = ", ".join(f"{k.removeprefix('split.')} {v}" for k, v in sorted(metrics.items()) if k.startswith("split."))
    summary = [("in", f"{len(accepted)} accepted samples"), ("out", f"{metrics['rows']} rows ({splits})")]
    return Outcome(metrics, summary=summary, artifacts=[Path(args.out) / "README.md", reports / "samples.json",
                                       reports / "rejections.json", *parquet])


if __name__ == "__main__":
    sys.exit(run_stage("export", body, add_arguments))

"""export: accepted samples -> Hugging Face dataset folder + card (see assay.export)."""

import json
import sys
from pathlib import Path

from assay.export import write_export
from assay.llm import describe
from assay.records import CRITIQUE_COLUMNS, read_table
from assay.stage import Outcome, run_stage

UPSTREAM = ("ingest", "generate", "critique", "filter")


def add_arguments(p):
    p.add_argument("--accepted", default="data/filtered/accepted.parquet", help="kept rows (filter)")
    p.add_argument("--metrics-dir", default="metrics", help="where upstream stage metrics are")
    p.add_argument("--out", default="data/export", help="dataset folder to write")


def body(args, params):
    accepted = read_table(args.accepted, CRITIQUE_COLUMNS, "export")
    stage_metrics = {s: json.loads((Path(args.metrics_dir) / f"{s}.json").read_text()) for s in UPSTREAM}
    used = dict.fromkeys([params.generate.endpoint, *params.critique.judges])
    models = [describe(n, params.llm.endpoints[n]) for n in used]
    e = params.export
    metrics = write_export(accepted, args.out, name=e.dataset_name, license=e.license,
                           description=e.description, params=params.model_dump(mode="json"),
                           models=models, stage_metrics=stage_metrics)
    return Outcome(metrics, artifacts=[Path(args.out) / "README.md"])


if __name__ == "__main__":
    sys.exit(run_stage("export", body, add_arguments))

"""report: every stage's outputs and metrics -> one self-contained HTML report and the CSV files
behind dvc.yaml's `plots` (see assay.report)."""

import sys
from pathlib import Path

from assay.report import build
from assay.report.collect import Paths
from assay.stage import Outcome, run_stage


def add_arguments(p):
    p.add_argument("--metrics-dir", required=True, help="where the stages' metrics are")
    p.add_argument("--chunks", required=True)
    p.add_argument("--generated", required=True)
    p.add_argument("--critiqued", required=True)
    p.add_argument("--accepted", required=True)
    p.add_argument("--rejected", required=True)
    p.add_argument("--export", required=True, help="the exported dataset folder")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--plots", required=True, help="folder for the dvc plots CSV files")


def body(args, params):
    paths = Paths(*(Path(p) for p in (args.metrics_dir, args.chunks, args.generated, args.critiqued,
                                      args.accepted, args.rejected, args.export)))
    metrics = build(args.out, paths, plots_dir=args.plots, allow=params.filter.pii.allow)
    return Outcome(metrics, artifacts=[Path(args.out)])


if __name__ == "__main__":
    sys.exit(run_stage("report", body, add_arguments))

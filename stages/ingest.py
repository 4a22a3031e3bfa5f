"""ingest: seed documents -> chunks Parquet (see assay.ingest)."""

import sys

from assay.ingest import ingest
from assay.records import CHUNK_COLUMNS, write_table
from assay.stage import Outcome, run_stage


def add_arguments(p):
    p.add_argument("--seeds", required=True, help="folder of seed documents")
    p.add_argument("--out", required=True, help="chunks Parquet to write")


def body(args, params):
    rows, metrics = ingest(args.seeds, params.ingest)
    write_table(rows, args.out, columns=CHUNK_COLUMNS)
    return Outcome(metrics, summary=[
        ("in", f"{metrics['files']} seed files ({metrics['skipped']} skipped)"),
        ("out", f"{metrics['chunks']} chunks, {metrics['tokens']:,} tokens")])


if __name__ == "__main__":
    sys.exit(run_stage("ingest", body, add_arguments))

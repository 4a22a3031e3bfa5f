"""critique: judge panel scores every sample against its cited chunks (see assay.critique)."""

import sys

from assay.critique import critique
from assay.llm import Ledger, open_models
from assay.records import CHUNK_COLUMNS, SAMPLE_COLUMNS, read_table, write_table
from assay.stage import Outcome, error_rate_failure, run_stage


def add_arguments(p):
    p.add_argument("--samples", default="data/generated/samples.parquet", help="samples (generate)")
    p.add_argument("--chunks", default="data/ingested/chunks.parquet", help="chunks (ingest)")
    p.add_argument("--out", default="data/critiqued/samples.parquet", help="judged samples to write")


def body(args, params):
    samples = read_table(args.samples, SAMPLE_COLUMNS, "critique")
    chunks = read_table(args.chunks, CHUNK_COLUMNS, "critique")
    cfg, ledger = params.critique, Ledger()
    with open_models(params, cfg.judges, ledger) as models:
        judged, metrics = critique(samples, chunks, [models[j] for j in cfg.judges], cfg)
    write_table(judged, args.out)
    metrics |= ledger.flat()
    failure = error_rate_failure("judge calls", metrics["judge_errors"], metrics["judge_calls"],
                                 cfg.max_error_rate, f"judges {cfg.judges}")
    return Outcome(metrics, failure)


if __name__ == "__main__":
    sys.exit(run_stage("critique", body, add_arguments))

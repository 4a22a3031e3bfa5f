"""generate: chunks -> grounded samples (see assay.generate)."""

import sys

from assay.generate import generate, ledger_by_kind
from assay.llm import Ledger, open_models
from assay.prompts.lessons import read_lessons
from assay.records import CHUNK_COLUMNS, GENERATE_COLUMNS, read_table, write_table
from assay.stage import Outcome, error_rate_failure, run_stage


def add_arguments(p):
    p.add_argument("--chunks", required=True, help="chunks Parquet (ingest)")
    p.add_argument("--out", required=True, help="samples Parquet to write")
    p.add_argument("--lessons", required=True, help="promoted lessons added to the prompts")
    p.add_argument("--responses", required=True, help="LLM responses used (seeds the cache; rewritten)")


def body(args, params):
    chunks = read_table(args.chunks, CHUNK_COLUMNS, "generate")
    cfg, ledger, lessons = params.generate, Ledger(), read_lessons(args.lessons)
    if params.executor == "ray":
        from assay.scale import ray_session
        from assay.scale.generate import generate_jobs

        with ray_session(params, [cfg.endpoint], ledger, responses=args.responses) as session:
            rows, metrics = generate(chunks, None, cfg, params.seed, lessons, complete=lambda jobs: generate_jobs(
                session, jobs, cfg, cfg.endpoint, params.seed, lessons))
    else:
        with open_models(params, [cfg.endpoint], ledger, responses=args.responses) as models:
            rows, metrics = generate(chunks, models[cfg.endpoint], cfg, params.seed, lessons)
    write_table(rows, args.out, columns=GENERATE_COLUMNS)
    metrics |= ledger.flat() | ledger_by_kind(ledger)
    failure = error_rate_failure("generations", metrics["errors"], metrics["samples"],
                                 cfg.max_error_rate, f"endpoint '{cfg.endpoint}'")
    return Outcome(metrics, failure, summary=[
        ("in", f"{metrics['chunks_used']} of {metrics['chunks_available']} chunks"),
        ("out", f"{metrics['samples']} samples, {metrics['errors']} failed or unparsable")])


if __name__ == "__main__":
    sys.exit(run_stage("generate", body, add_arguments))

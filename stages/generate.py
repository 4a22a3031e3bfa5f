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
    # The stage fails when the endpoint fails (calls that errored, were cut or did not parse), or
    # when no sample passes its kind's checks at all (a wrong model or prompt). A small model whose
    # samples often fail the checks is working: those rows are kept with their reason, and counted.
    failure = error_rate_failure("generation calls", metrics["call_errors"], metrics["samples"],
                                 cfg.max_error_rate, f"endpoint '{cfg.endpoint}'")
    if failure is None and metrics["samples"] and not metrics["parsed"]:
        failure = (f"none of {metrics['samples']} samples passed its kind's checks on endpoint '{cfg.endpoint}' "
                   f"(reasons in metrics/generate.json, error.*); check the model and the prompts")
    return Outcome(metrics, failure, summary=[
        ("in", f"{metrics['chunks_used']} of {metrics['chunks_available']} chunks"),
        ("out", f"{metrics['parsed']} of {metrics['samples']} samples; {metrics['call_errors']} calls failed, "
                f"{metrics['check_rejected']} failed their kind's checks")])


if __name__ == "__main__":
    sys.exit(run_stage("generate", body, add_arguments))

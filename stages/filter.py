"""filter: score (cached) then decide keep / reasons (see assay.filters.run)."""

import sys

from assay.filters.run import decide, metrics, score
from assay.filters.scores import ScoreCache
from assay.records import CRITIQUE_COLUMNS, read_table, write_table
from assay.stage import Outcome, run_stage


def add_arguments(p):
    p.add_argument("--samples", default="data/critiqued/samples.parquet", help="judged samples")
    p.add_argument("--accepted", default="data/filtered/accepted.parquet", help="kept rows to write")
    p.add_argument("--rejected", default="data/filtered/rejected.parquet", help="rejected rows + reasons")


def body(args, params):
    samples = read_table(args.samples, CRITIQUE_COLUMNS, "filter")
    cache = ScoreCache(params.llm.cache_dir)
    pii, toxicity, backend = score(samples, params.filter, cache)
    decided = decide(samples, pii, toxicity, params.filter)
    kept = decided["reasons"].map(len) == 0
    write_table(decided[kept], args.accepted)
    write_table(decided[~kept], args.rejected)
    return Outcome(metrics(decided, backend, cache))


if __name__ == "__main__":
    sys.exit(run_stage("filter", body, add_arguments))

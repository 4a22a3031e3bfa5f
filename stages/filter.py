"""filter: score (cached) then decide keep / reasons (see assay.filters.pipeline)."""

import sys

from assay.filters.pipeline import run_filter, run_filter_stream
from assay.filters.scores import ScoreCache
from assay.filters.stream import open_input, streams
from assay.records import CRITIQUE_COLUMNS, read_table, write_table
from assay.stage import Outcome, run_stage


def add_arguments(p):
    p.add_argument("--samples", required=True, help="judged samples")
    p.add_argument("--chunks", required=True, help="seed chunks (domain relevance)")
    p.add_argument("--accepted", required=True, help="kept rows to write")
    p.add_argument("--rejected", required=True, help="rejected rows + reasons")
    p.add_argument("--responses", required=True, help="rewriter responses used (seeds the cache; rewritten)")


def body(args, params):
    streaming = streams(params.filter)  # batch by batch, memory flat in the sample count
    read = open_input if streaming else read_table  # both check the columns up front
    samples = read(args.samples, CRITIQUE_COLUMNS, "filter")
    chunks = read_table(args.chunks, ["chunk_id", "text"], "filter")
    cache = ScoreCache(params.llm.cache_dir)
    try:
        if streaming:
            return Outcome(run_filter_stream(args.samples, chunks, params, cache, args.responses,
                                             args.accepted, args.rejected))
        decided, metrics = run_filter(samples, chunks, params, cache, args.responses)
    finally:
        cache.close()
    kept = decided["reasons"].map(len) == 0
    write_table(decided[kept], args.accepted)
    write_table(decided[~kept], args.rejected)
    return Outcome(metrics)


if __name__ == "__main__":
    sys.exit(run_stage("filter", body, add_arguments))

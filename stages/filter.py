"""filter: score (cached) then decide keep / reasons (see assay.filters.pipeline)."""

import sys

from assay.filters.pipeline import run_filter, run_filter_stream
from assay.filters.reviews import read_reviews
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
    p.add_argument("--reviews", help="folder of human reviews (*.jsonl; may be empty); none: machine rules only")


def body(args, params):
    reviews = read_reviews(args.reviews) if args.reviews else []  # a bad line fails here, before scoring
    # batch by batch, memory flat in the sample count; human reviews and the Ray executor take
    # the whole-frame path (reviews apply after dedup; ray shards the scoring itself)
    streaming = streams(params.filter) and not reviews and params.executor == "local"
    read = open_input if streaming else read_table  # both check the columns up front
    samples = read(args.samples, CRITIQUE_COLUMNS, "filter")
    chunks = read_table(args.chunks, ["chunk_id", "text"], "filter")
    cache = ScoreCache(params.llm.cache_dir)
    try:
        if streaming:
            metrics = run_filter_stream(args.samples, chunks, params, cache, args.responses,
                                        args.accepted, args.rejected)
            return Outcome(metrics, summary=[
                ("in", f"{metrics['input']} samples, streamed in batches, 0 review lines"),
                ("out", f"{metrics['accepted']} accepted, {metrics['rejected']} rejected"),
                ("reviews", "none yet (`assay review`)")])
        if params.executor == "ray":
            from assay.llm import Ledger
            from assay.roles import rewriter
            from assay.scale import ray_session

            rewrites = rewriter(params.filter.rewrite)
            with ray_session(params, [rewrites] if rewrites else [], Ledger(),
                             responses=args.responses if rewrites else None) as session:
                decided, metrics = run_filter(samples, chunks, params, cache, args.responses, session, reviews=reviews)
        else:
            decided, metrics = run_filter(samples, chunks, params, cache, args.responses, reviews=reviews)
    finally:
        cache.close()
    kept = decided["reasons"].map(len) == 0
    write_table(decided[kept], args.accepted)
    write_table(decided[~kept], args.rejected)
    return Outcome(metrics, summary=[
        ("in", f"{metrics['input']} samples, {len(reviews)} review lines"),
        ("out", f"{metrics['accepted']} accepted, {metrics['rejected']} rejected"),
        ("reviews", f"{metrics['review.reviewed']} reviewed, agreement {metrics['review.agreement']}"
         if metrics["review.reviewed"] else "none yet (`assay review`)")])


if __name__ == "__main__":
    sys.exit(run_stage("filter", body, add_arguments))

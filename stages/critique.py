"""critique: grounding signals + judges' verdicts -> one calibrated decision, orchestrated revisions (see assay.critique)."""

import sys

from assay.critique import critique, grounding, panel_models
from assay.critique.lessons import write_lessons
from assay.critique.metrics import non_discriminating
from assay.llm import Ledger, describe, open_models
from assay.records import CHUNK_COLUMNS, SAMPLE_COLUMNS, read_table, write_table
from assay.roles import endpoint_roles
from assay.stage import Outcome, error_rate_failure, run_stage


def add_arguments(p):
    p.add_argument("--samples", required=True, help="samples (generate)")
    p.add_argument("--chunks", required=True, help="chunks (ingest)")
    p.add_argument("--out", required=True, help="judged samples to write")
    p.add_argument("--lessons", required=True, help="distilled failure modes to write")
    p.add_argument("--responses", required=True, help="LLM responses used (seeds the cache; rewritten)")


def body(args, params):
    samples = read_table(args.samples, SAMPLE_COLUMNS, "critique")
    chunks = read_table(args.chunks, CHUNK_COLUMNS, "critique")
    cfg, ledger, roles = params.critique, Ledger(), endpoint_roles(params.critique, params.generate.endpoint)
    if params.executor == "ray":
        from assay.scale import critique as on_ray
        from assay.scale import ray_session

        with ray_session(params, roles.critique(), ledger, responses=args.responses) as session:
            judged, metrics, states = on_ray.critique(session, samples, chunks, cfg, roles)
    else:
        with open_models(params, roles.critique(), ledger, responses=args.responses) as m:
            judged, metrics, states = critique(samples, chunks, panel_models(cfg, m, roles), cfg)
    write_table(judged, args.out)
    metrics["lessons"] = write_lessons(states, args.lessons)
    metrics |= ledger.flat()
    for name in non_discriminating(metrics):
        print(f"assay critique: warning: judge '{name}' gave nearly the same verdict to every sample "
              f"(P(Yes) std {metrics[f'judge.{name}.p_yes_std']}): it is not telling samples apart", file=sys.stderr)
    fitted = grounding.load(cfg.grounding_model).stack
    judged_by = sorted({describe(j, params.llm.endpoints[j])["model"].replace("/", "_") for j in cfg.judges})
    if fitted and judged_by and judged_by != [fitted["judge_model"]]:
        print(f"assay critique: warning: the grounding decision's judge stage was fitted on {fitted['judge_model']}'s "
              f"verdicts, but the judges are {judged_by}: refit it (bench/grounding.py judge + fit --judged) or set "
              f"critique.judges to that model", file=sys.stderr)
    failure = error_rate_failure("judge calls", metrics["judge_errors"], metrics["judge_calls"],
                                 cfg.max_error_rate, f"judges {cfg.judges}")
    verdicts = ", ".join(f"{k.removeprefix('verdict.')} {v}" for k, v in sorted(metrics.items())
                         if k.startswith("verdict."))
    return Outcome(metrics, failure, summary=[("in", f"{len(samples)} samples"),
                                              ("out", f"{verdicts}; {metrics.get('revised', 0)} revised")])


if __name__ == "__main__":
    sys.exit(run_stage("critique", body, add_arguments))

"""The `assay` command: serve an embedded model by hand, list models, inspect outputs, release,
pull and compare dataset versions."""

from __future__ import annotations

import argparse
import os
import sys

from assay.errors import AssayError


def _serve(args: argparse.Namespace) -> int:
    from assay.llm.server import serve, state_dir

    serve(args.model, args.n_parallel, args.n_ctx, args.threads, state_dir() / f"{args.model}.json", args.port)
    sys.stdout.flush()
    os._exit(0)  # llama.cpp's server threads never join: leave without waiting on them


def _models(_: argparse.Namespace) -> int:
    from assay.llm.weights import WEIGHTS

    for key, spec in WEIGHTS.items():
        print(f"{key:22} {spec.description}  [{spec.pip}]")
    return 0


def _show(args: argparse.Namespace) -> int:
    import pandas as pd

    frame = pd.read_parquet(args.path)
    with pd.option_context("display.max_colwidth", 120, "display.width", 200):
        print(frame.head(args.n).to_string())
    print(f"\n{len(frame)} rows; columns: {', '.join(frame.columns)}")
    return 0


REPORT = {
    "ingest": ("files", "files_used", "chunks", "tokens", "skipped", "skipped_records"),
    "generate": ("samples", "errors", "evidence_ok_rate", "coverage", "llm.calls", "llm.cache_hits",
                 "llm.completion_tokens", "llm.cached_completion_tokens", "llm.cost_usd"),
    "critique": ("judged", "judge_errors", "score_mean", "accept_rate", "llm.calls", "llm.cache_hits"),
    "filter": ("input", "accepted", "rejected", "coverage", "toxicity_backend"),
    "export": ("rows",),
}


def _report(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    for stage, keys in REPORT.items():
        path = Path(args.metrics_dir) / f"{stage}.json"
        if not path.is_file():
            print(f"{stage:9} (no metrics yet: run `dvc repro`)")
            continue
        data = json.loads(path.read_text())
        shown = [k for k in keys if k in data] + (sorted(k for k in data if k.startswith("reason."))
                                                 if stage == "filter" else [])
        print(f"{stage:9} " + "  ".join(f"{k}={data[k]}" for k in shown))
    return 0


def _lessons(args: argparse.Namespace) -> int:
    """Promote the last critique run's lessons into the next generation's prompts."""
    import shutil
    from pathlib import Path

    source, target = Path(args.source), Path(args.target)
    if not source.is_file():
        raise AssayError(f"{source} does not exist: run the critique stage first (dvc repro critique)")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    print(f"promoted {source} -> {target}; commit it, then `dvc repro` regenerates with these lessons")
    return 0


def _release(args: argparse.Namespace) -> int:
    from assay.release import release

    commit = release(args.tag, push=not args.no_push)
    print(f"released {args.tag} at {commit[:12]}; share it with `git push --follow-tags` "
          f"(data is on the DVC remote{'' if not args.no_push else ': NOT pushed (--no-push)'})")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from assay.release import pull

    print(f"{args.path} at {args.tag} -> {pull(args.tag, args.out, args.repo, args.path)}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from assay import tracking
    from assay.release import format_compare, git, metrics_diff

    runs = {rev: tracking.find_run(rev, git("rev-parse", f"{rev}^{{commit}}")) for rev in (args.rev_a, args.rev_b)}
    print(format_compare(args.rev_a, args.rev_b, metrics_diff(args.rev_a, args.rev_b),
                         {r: v for r, v in runs.items() if v}))
    return 0


def _add_version_commands(sub) -> None:
    release = sub.add_parser("release", help="clean workspace -> dvc repro -> dvc push -> commit dvc.lock "
                                             "+ metrics -> git tag TAG")
    release.add_argument("tag", help="the version name, e.g. v1")
    release.add_argument("--no-push", action="store_true", help="skip `dvc push` (no remote yet)")
    release.set_defaults(func=_release)
    pull = sub.add_parser("pull", help="fetch the exported dataset of a tag from the DVC remote (dvc get)")
    pull.add_argument("tag")
    pull.add_argument("--out", help="target folder (default: export-<tag>)")
    pull.add_argument("--repo", default=".", help="git repository path or URL (default: this one)")
    pull.add_argument("--path", default="data/export", help="DVC-tracked path to fetch")
    pull.set_defaults(func=_pull)
    compare = sub.add_parser("compare", help="metrics of two revisions side by side (dvc metrics diff + MLflow)")
    compare.add_argument("rev_a")
    compare.add_argument("rev_b")
    compare.set_defaults(func=_compare)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="assay", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run an embedded llama.cpp server on 127.0.0.1 until Ctrl-C; "
                                         "pipeline stages reuse it instead of starting their own")
    serve.add_argument("model", help="model key (see `assay models`)")
    serve.add_argument("--n-parallel", type=int, default=4, help="server slots")
    serve.add_argument("--n-ctx", type=int, default=8192, help="context shared by the slots")
    serve.add_argument("--threads", type=int, default=1, help="CPU threads (2 spin-wait for each other: on a busy CPU 1 costs far less)")
    serve.add_argument("--port", type=int, default=0, help="port (0 = a free one)")
    serve.set_defaults(func=_serve)
    sub.add_parser("models", help="list the embedded models and their PyPI packages").set_defaults(func=_models)
    show = sub.add_parser("show", help="print the first rows of a stage's Parquet output")
    show.add_argument("path")
    show.add_argument("-n", type=int, default=5)
    show.set_defaults(func=_show)
    lessons = sub.add_parser("lessons", help="promote the critique run's lessons into generation prompts")
    lessons.add_argument("action", choices=["promote"])
    lessons.add_argument("--source", default="data/critiqued/lessons.md")
    lessons.add_argument("--target", default="lessons/lessons.md")
    lessons.set_defaults(func=_lessons)
    report = sub.add_parser("report", help="key metrics of the last run, one line per stage")
    report.add_argument("--metrics-dir", default="metrics")
    report.set_defaults(func=_report)
    _add_version_commands(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except AssayError as exc:
        print(f"assay: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())

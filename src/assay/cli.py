"""The `assay` command: serve an embedded model by hand, list models, inspect and review outputs,
release, pull and compare dataset versions."""

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
    import shutil

    import pandas as pd

    from assay.view import block, select

    frame = pd.read_parquet(args.path)
    chosen = select(frame, args.id, args.reason)
    shown = chosen if args.n <= 0 else chosen.head(args.n)
    width = min(shutil.get_terminal_size((100, 24)).columns, 120)
    for k, record in enumerate(shown.to_dict("records"), 1):
        print(block(record, width=width, limit=None if args.full else args.chars, position=f"[{k}/{len(chosen)}] "))
        print()
    picked = " matching" if args.id or args.reason else ""
    print(f"{len(shown)} of {len(chosen)}{picked} rows shown ({len(frame)} in {args.path}); "
          f"more: -n 0 (all), --id ID, --reason R, --full")
    return 0


def _review(args: argparse.Namespace) -> int:
    from pathlib import Path

    from assay import review

    review.run([Path(p) for p in args.inputs], Path(args.reviews), args.version,
               args.reviewer or review.default_reviewer(), args.reason, args.n)
    return 0


REPORT = {
    "ingest": ("files", "files_used", "chunks", "tokens", "skipped", "skipped_records"),
    "generate": ("samples", "errors", "evidence_ok_rate", "coverage", "llm.calls", "llm.cache_hits",
                 "llm.completion_tokens", "llm.cached_completion_tokens", "llm.cost_usd"),
    "critique": ("judged", "judge_errors", "score_mean", "accept_rate", "llm.calls", "llm.cache_hits"),
    "filter": ("input", "accepted", "rejected", "coverage", "toxicity_backend", "review.reviewed", "review.agreement"),
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
    if not args.no_html:
        print(f"report: {_html_report(args)}")
    return 0


def _html_report(args: argparse.Namespace) -> str:
    """Build the HTML report (beside another revision with --compare); return its path."""
    import re
    from pathlib import Path

    from assay.config import load_params
    from assay.report import build, compare
    from assay.report.collect import Paths

    paths = Paths(metrics=Path(args.metrics_dir))
    allow = load_params(args.params).filter.pii.allow if Path(args.params).is_file() else []
    other, out = None, args.html or "reports/report.html"
    if args.compare:
        metrics = compare.metrics_at(args.compare, paths)  # fails first on a revision that does not exist
        rejected, why = compare.rejected_at(args.compare, paths)
        other = {"rev": args.compare, "metrics": metrics, "rejected": rejected, "why": why}
        out = args.html or f"reports/report-vs-{re.sub(r'[^A-Za-z0-9._-]', '_', args.compare)}.html"
    build(out, paths, compare=other, allow=allow)
    return str(Path(out).resolve())


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


def _batches(args: argparse.Namespace) -> int:
    from assay.config import load_params
    from assay.llm import Ledger, open_models

    params = load_params(args.params)
    names = [name for name, ep in params.llm.endpoints.items() if ep.batch]
    with open_models(params, names, Ledger()) as models:
        for name, model in models.items():
            for batch_id, status, count in model.recorded(cancel=args.cancel):  # type: ignore[attr-defined]
                print(f"{name:16} {batch_id:40} {status:12} {count} requests")
    if not names:
        print("no endpoint has `batch: true` in params")
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
    serve.add_argument("--threads", type=int, default=2, help="CPU threads (1 on a box shared with other work: 2 spin-wait for each other)")
    serve.add_argument("--port", type=int, default=0, help="port (0 = a free one)")
    serve.set_defaults(func=_serve)
    sub.add_parser("models", help="list the embedded models and their PyPI packages").set_defaults(func=_models)
    show = sub.add_parser("show", help="a stage's Parquet output as readable blocks: reasons first, turns labelled")
    show.add_argument("path", help="e.g. data/filtered/rejected.parquet")
    show.add_argument("-n", type=int, default=5, help="rows to show (0 = all; default 5)")
    show.add_argument("--id", action="append", help="only this id (a prefix is enough; repeatable)")
    show.add_argument("--reason", help="only rows rejected for this reason (`pii` matches `pii:EMAIL_ADDRESS`)")
    show.add_argument("--chars", type=int, default=400, help="truncate each text after this many characters")
    show.add_argument("--full", action="store_true", help="no truncation; also the generation/critique JSON")
    show.set_defaults(func=_show)
    rev = sub.add_parser("review", help="accept / reject the filter's samples one at a time; decisions go to "
                                        "reviews/<version>.jsonl and count in the next filter run")
    rev.add_argument("inputs", nargs="*", default=["data/filtered/rejected.parquet", "data/filtered/accepted.parquet"],
                     help="the filter's outputs (default: rejected and accepted)")
    rev.add_argument("--reviews", default="reviews", help="review folder (the filter stage's --reviews)")
    rev.add_argument("--version", default="current", help="file name in it: reviews/<version>.jsonl (default current)")
    rev.add_argument("--reviewer", help="your name (default: git config user.name, else $USER)")
    rev.add_argument("--reason", help="only samples rejected for this reason (`pii` matches `pii:EMAIL_ADDRESS`)")
    rev.add_argument("-n", type=int, default=0, help="stop after this many samples (0 = all)")
    rev.set_defaults(func=_review)
    lessons = sub.add_parser("lessons", help="promote the critique run's lessons into generation prompts")
    lessons.add_argument("action", choices=["promote"])
    lessons.add_argument("--source", default="data/critiqued/lessons.md")
    lessons.add_argument("--target", default="lessons/lessons.md")
    lessons.set_defaults(func=_lessons)
    report = sub.add_parser("report", help="key metrics of the last run, one line per stage, and the "
                                           "self-contained HTML report (figures, sample browser)")
    report.add_argument("--metrics-dir", default="metrics")
    report.add_argument("--html", help="HTML file to write (default: reports/report.html, or "
                                       "reports/report-vs-REV.html with --compare)")
    report.add_argument("--compare", metavar="REV", help="a git revision (tag, branch, commit) to show side by side")
    report.add_argument("--params", default="params.yaml", help="params file (filter.pii.allow)")
    report.add_argument("--no-html", action="store_true", help="print the metrics lines only")
    report.set_defaults(func=_report)
    batches = sub.add_parser("batches", help="Batch API jobs submitted and not yet collected (rerun the stage "
                                              "to collect them), with --cancel to stop them")
    batches.add_argument("--params", default="params.yaml")
    batches.add_argument("--cancel", action="store_true", help="cancel them (finished answers are still collected)")
    batches.set_defaults(func=_batches)
    _add_version_commands(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except AssayError as exc:
        print(f"assay: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())

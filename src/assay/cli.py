"""The `assay` command: serve an embedded model by hand, list models, inspect outputs."""

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
    from assay.llm.models import MODELS

    for key, spec in MODELS.items():
        print(f"{key:22} {spec.description}  [{spec.pip}]")
    return 0


def _show(args: argparse.Namespace) -> int:
    import pandas as pd

    frame = pd.read_parquet(args.path)
    with pd.option_context("display.max_colwidth", 120, "display.width", 200):
        print(frame.head(args.n).to_string())
    print(f"\n{len(frame)} rows; columns: {', '.join(frame.columns)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="assay", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run an embedded llama.cpp server on 127.0.0.1 until Ctrl-C; "
                                         "pipeline stages reuse it instead of starting their own")
    serve.add_argument("model", help="model key (see `assay models`)")
    serve.add_argument("--n-parallel", type=int, default=4, help="server slots")
    serve.add_argument("--n-ctx", type=int, default=8192, help="context shared by the slots")
    serve.add_argument("--threads", type=int, default=2, help="CPU threads")
    serve.add_argument("--port", type=int, default=0, help="port (0 = a free one)")
    serve.set_defaults(func=_serve)
    sub.add_parser("models", help="list the embedded models and their PyPI packages").set_defaults(func=_models)
    show = sub.add_parser("show", help="print the first rows of a stage's Parquet output")
    show.add_argument("path")
    show.add_argument("-n", type=int, default=5)
    show.set_defaults(func=_show)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except AssayError as exc:
        print(f"assay: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())

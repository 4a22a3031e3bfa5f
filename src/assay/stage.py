"""What every stage entry point shares: arguments, params, logging, error messages and exit codes,
the metrics file, the MLflow nested run and the short summary table printed at the end."""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assay.config import Params, load_params
from assay.errors import AssayError
from assay.records import write_json


@dataclass
class Outcome:
    metrics: dict[str, Any]
    failure: str | None = None  # set when outputs were written but the stage must fail
    artifacts: list[Path] = field(default_factory=list)
    summary: list[tuple[str, str]] = field(default_factory=list)  # ("in", "12 chunks"), ("out", ...)


Body = Callable[[argparse.Namespace, Params], Outcome]


def run_stage(name: str, body: Body, add_arguments: Callable[[argparse.ArgumentParser], None],
              argv: list[str] | None = None) -> int:
    """Parse args, load params, run `body`, write metrics/<name>.json, log to MLflow.

    Exit codes: 0 ok, 1 stage failed (e.g. error rate above the limit; the message adds the
    failed calls by endpoint and error kind), 2 bad input, config or environment (disk full)."""
    parser = argparse.ArgumentParser(prog=f"stages/{name}.py")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--metrics", required=True, help="metrics JSON to write")
    parser.add_argument("--no-mlflow", action="store_true", help="skip MLflow logging")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"{name}: %(levelname)s %(message)s")
    for noisy in ("httpx", "httpx2", "openai", "presidio-analyzer", "alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started, cpu = time.monotonic(), time.process_time()
    try:
        params = load_params(args.params)
        start, body_cpu = time.monotonic(), _own_cpu()
        outcome = body(args, params)
        # this process only: a local LLM server's CPU is llm.server_cpu_s (see assay.llm.endpoints)
        outcome.metrics |= {"stage.wall_s": round(time.monotonic() - start, 2),
                            "stage.cpu_s": round(_own_cpu() - body_cpu, 2)}
        write_json(outcome.metrics, args.metrics)
    except AssayError as exc:
        print(f"assay {name}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # disk full, permissions, a vanished folder: the environment, not a bug
        print(f"assay {name}: error: {exc}; fix the cause and rerun (outputs are written atomically: "
              f"the previous ones are unchanged)", file=sys.stderr)
        return 2
    if not args.no_mlflow:
        from assay import tracking

        text = Path(args.params).read_text(encoding="utf-8")
        tracking.log_stage(name, outcome.metrics, yaml.safe_load(text), text, outcome.artifacts)
    print(summary_table(name, outcome.summary, outcome.metrics, time.monotonic() - started,
                        time.process_time() - cpu), flush=True)
    if outcome.failure:
        counts = error_counts(outcome.metrics)
        print(f"assay {name}: failed: {outcome.failure}" + (f"; errors by kind: {counts}" if counts else ""),
              file=sys.stderr)
        return 1
    return 0


def _llm_line(metrics: dict[str, Any], prefix: str) -> str | None:
    m = {k.removeprefix(f"{prefix}."): v for k, v in metrics.items() if k.startswith(f"{prefix}.")}
    if not m.get("calls"):
        return None
    cost = f", ${m['cost_usd']:.4f}" if m.get("cost_usd") else ""
    return (f"{int(m['calls'])} calls ({int(m.get('cache_hits', 0))} from cache), "
            f"{int(m.get('prompt_tokens', 0)):,} prompt + {int(m.get('completion_tokens', 0)):,} completion tokens{cost}")


def summary_table(name: str, rows: list[tuple[str, str]], metrics: dict[str, Any], seconds: float,
                  cpu_seconds: float) -> str:
    """A few aligned lines: the stage's own rows (in, out...), rows rejected per reason
    (`reason.*` metrics), LLM calls and tokens (`llm.*`, `rewrite_llm.*`), and the time taken."""
    lines = list(rows)
    reasons = sorted(((k.removeprefix("reason."), v) for k, v in metrics.items() if k.startswith("reason.") and v),
                     key=lambda kv: (-kv[1], kv[0]))
    if reasons:
        lines.append(("rejected", ", ".join(f"{k} {v}" for k, v in reasons)))
    for prefix, label in (("llm", "llm"), ("rewrite_llm", "rewrite llm")):
        line = _llm_line(metrics, prefix)
        if line:
            lines.append((label, line))
    lines.append(("time", f"{seconds:.1f} s ({cpu_seconds:.1f} s CPU in this process)"))
    width = max(len(label) for label, _ in lines)
    return "\n".join([f"assay {name}: done", *(f"  {label:<{width}}  {text}" for label, text in lines)])


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def error_counts(metrics: dict[str, Any]) -> str:
    """"endpoint 'a': InternalServerError 12, unparsable_output 1" from the ledger's
    `llm.<endpoint>.error.<kind>` metrics (empty when no call failed)."""
    per: dict[str, list[str]] = {}
    for key, count in sorted(metrics.items()):
        endpoint, sep, kind = key.removeprefix("llm.").partition(".error.")
        if key.startswith("llm.") and sep and count:
            per.setdefault(endpoint, []).append(f"{kind} {int(count)}")
    return "; ".join(f"endpoint '{e}': {', '.join(kinds)}" for e, kinds in per.items())


def error_rate_failure(what: str, errors: int, total: int, limit: float, where: str) -> str | None:
    """The failure message when errors/total exceeds `limit`, else None."""
    rate = errors / total if total else 0.0
    if rate <= limit:
        return None
    return (f"{errors}/{total} {what} failed ({rate:.0%} > max_error_rate {limit:.0%}) on {where}; "
            f"the rows are kept with `error` and raw output; check the endpoint, then rerun (finished "
            f"calls are cached and not repeated)")

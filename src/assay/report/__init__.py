"""`assay report`: one self-contained HTML file per run (funnel, rejection reasons by rows, score
distributions per judge and grounding signal, judge agreement, revision gains, seed coverage,
per-kind counts, diversity, tokens and cost, and a filterable sample browser), plus the small CSV
files behind dvc.yaml's `plots`. Optionally side by side with another git revision.

Inputs: the stage outputs of assay.report.collect.Paths (any may be missing). Sample text is
untrusted: it is escaped everywhere and PII spans are masked (assay.report.samples).
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from assay.report import collect, figures, plots
from assay.report.page import grid, page, section, table
from assay.report.samples import browser


def _funnel_section(run: collect.Run, other: dict[str, Any] | None) -> str:
    steps = {"this run": collect.funnel(run.metrics)}
    if other is not None:
        steps = {other["rev"]: collect.funnel(other["metrics"]), **steps}
    frame = pd.DataFrame({"step": [s for s, _ in steps["this run"]],
                          **{k: [c for _, c in v] for k, v in steps.items()}})
    return section("funnel", figures.funnel(steps), table(frame))


def _rejections(run: collect.Run, other: dict[str, Any] | None) -> str:
    reasons = collect.reason_rows(run.decided)
    parts = [_either(len(reasons), lambda: figures.bars(reasons, "reason", ["rows", "first"], "fig-reasons",
                                                        "Rejected rows per reason", horizontal=True)),
             table(reasons, "no rejected rows")]
    if other is not None:
        parts.append(f"<h3>Rows per reason at {html.escape(other['rev'])}</h3>")
        if other["rejected"] is not None:
            parts.append(table(collect.reason_rows(other["rejected"]), "no rejected rows"))
        else:
            parts += [f'<p class="note">{html.escape(other["why"])}; reason counts from its metrics '
                      "(these count reasons, not rows):</p>",
                      table(collect.prefixed(other["metrics"].get("filter", {}), "reason."))]
    return section("rejections", *parts, note="rows: rejected rows carrying the reason (a row counts "
                   "once per reason); first: rows where it is the first reason (these sum to the rejected rows)")


def _either(condition: Any, draw: Callable[[], str], note: str = "") -> str:
    """The figure when there is data for it, else a one-line note (escaped)."""
    return draw() if condition else (f'<p class="note">{html.escape(note)}</p>' if note else "")


def _scores(run: collect.Run) -> str:
    judges, signals = collect.judge_scores(run.critiqued), collect.signal_scores(run.critiqued)
    revised, decided = collect.revision(run.critiqued), run.decided
    final = {s: decided.loc[decided["status"] == s, "score"] for s in ("accepted", "rejected")} \
        if "score" in decided else {}
    probabilities = {c: signals[c] for c in ("p_signals", "p_grounded") if c in signals}
    figs = [
        _either(len(judges), lambda: figures.histograms({c: judges[c] for c in judges.columns}, "fig-judges",
                                                        "First-round P(Yes) per judge", "P(Yes)"), "not judged yet"),
        _either(final, lambda: figures.histograms(final, "fig-final", "Final P(grounded): accepted vs rejected",
                                                  "P(grounded)")),
        _either(probabilities, lambda: figures.histograms(probabilities, "fig-pscores",
                                                          "First-round P(signals) and P(grounded)", "probability")),
        _either(len(signals), lambda: figures.boxes(signals.drop(columns=list(probabilities)), "fig-signals",
                                                    "Grounding signals, first round")),
        _either(len(judges.columns) > 1, lambda: figures.agreement(judges), "one judge: no agreement to measure"),
    ]
    return section("scores", grid(*figs),
                   _either(len(revised), lambda: figures.before_after(revised), "no sample was revised"),
                   table(collect.prefixed(run.metrics.get("critique", {}), "judge.")))


def _mix(run: collect.Run) -> str:
    cover, kinds = collect.coverage(run.chunks, run.generated, run.decided), collect.per_kind(run)
    diversity = collect.prefixed(run.metrics.get("generate", {}), "diversity.")
    return section("coverage and mix",
                   _either(len(cover), lambda: figures.bars(cover, "source", ["chunks", "used", "accepted"],
                           "fig-coverage", "Seed chunks per file: all, used, with an accepted sample")),
                   table(cover, "no chunks yet"),
                   _either(len(kinds), lambda: figures.bars(kinds, "kind", [c for c in kinds.columns if c != "kind"],
                                                            "fig-kinds", "Samples per kind")),
                   table(kinds, "no samples yet"), "<h3>Diversity (generate)</h3>", table(diversity))


def _compare_metrics(run: collect.Run, other: dict[str, Any]) -> str:
    def value(metrics: dict[str, Any], stage: str, key: str) -> str:
        found = metrics.get(stage, {}).get(key)
        return "" if found is None else str(found)
    rows = [(stage, key, value(other["metrics"], stage, key), value(run.metrics, stage, key))
            for stage in collect.STAGES
            for key in sorted(set(run.metrics.get(stage, {})) | set(other["metrics"].get(stage, {})))]
    frame = pd.DataFrame(rows, columns=["stage", "metric", other["rev"], "this run"])
    changed = frame[frame[other["rev"]] != frame["this run"]]
    head = f"<p>{len(changed)} of {len(frame)} metrics differ from {html.escape(other['rev'])}:</p>"
    return section("compare", head, table(changed, "no metric differs"))


def _samples(run: collect.Run) -> pd.DataFrame:
    """The rows the browser shows: the filter's decided rows, else the furthest stage's."""
    return next((f for f in (run.decided, run.critiqued, run.generated) if len(f)), run.generated)


def build(out: str | Path, paths: collect.Paths = collect.DEFAULT, plots_dir: str | Path | None = None,
          compare: dict[str, Any] | None = None, allow: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Write the report to `out` (and the dvc plots CSVs to `plots_dir`); return flat metrics.

    `compare`: {"rev", "metrics", "rejected" (DataFrame or None), "why"} from assay.report.compare."""
    run = collect.load_run(paths)
    sections = [_compare_metrics(run, compare)] if compare else []
    sections += [_funnel_section(run, compare), _rejections(run, compare), _scores(run), _mix(run),
                 section("tokens and cost", table(collect.usage(run.metrics), "no LLM calls recorded"),
                         "<h3>Per task kind (generate) and per endpoint and role</h3>",
                         table(collect.usage_detail(run.metrics), "no per-kind ledger")),
                 section("samples", browser(_samples(run), run.critiqued, run.chunks, allow)),
                 section("all metrics", *(f"<details><summary>{s}</summary>{table(m)}</details>"
                                          for s, m in run.metrics.items()))]
    if run.missing:
        sections.insert(0, section("missing", note="not found (stage not run yet): " + ", ".join(run.missing)))
    title = "assay run report" + (f" (compared with {compare['rev']})" if compare else "")
    text = page(title, sections, figures.plotly_js())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)  # readers see the old report or the new one, never half
    if plots_dir is not None:
        plots.write(run, plots_dir)
    return {"samples": len(_samples(run)), "html_bytes": len(text.encode("utf-8")), "missing_inputs": len(run.missing)}

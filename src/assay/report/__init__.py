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
    parts = [figures.bars(reasons, "reason", ["rows", "first"], "fig-reasons", "Rejected rows per reason",
                          horizontal=True) if len(reasons) else "", table(reasons, "no rejected rows")]
    if other is not None:
        theirs = collect.reason_rows(other["rejected"]) if other["rejected"] is not None else pd.DataFrame()
        parts.append(f"<h3>Rows per reason at {html.escape(other['rev'])}</h3>" +
                     (table(theirs, "no rejected rows") if other["rejected"] is not None else
                      f'<p class="note">{html.escape(other["why"])}; reason counts from its metrics (counts reasons, not rows):</p>'
                      + table(collect.prefixed(other["metrics"].get("filter", {}), "reason."))))
    return section("rejections", *parts, note="rows: rejected rows carrying the reason (a row counts once "
                   "per reason); first: rows where it is the first reason (these sum to the rejected rows)")


def _scores(run: collect.Run) -> str:
    judges, signals, revised = (collect.judge_scores(run.critiqued), collect.signal_scores(run.critiqued),
                                collect.revision(run.critiqued))
    final = {s: run.decided.loc[run.decided["status"] == s, "score"] for s in ("accepted", "rejected")} \
        if "score" in run.decided else {}
    parts = [figures.histograms({c: judges[c] for c in judges.columns}, "fig-judges", "First-round P(Yes) per judge",
                                "P(Yes)") if len(judges) else "",
             figures.histograms(final, "fig-final", "Final P(grounded): accepted vs rejected", "P(grounded)")
             if final else "",
             figures.histograms({c: signals[c] for c in ("p_signals", "p_grounded") if c in signals},
                                "fig-pscores", "First-round P(signals) and P(grounded)", "probability")
             if len(signals) else ""]
    rest = [figures.boxes(signals.drop(columns=["p_signals", "p_grounded"], errors="ignore"), "fig-signals",
                          "Grounding signals, first round") if len(signals) else "",
            figures.agreement(judges) if len(judges.columns) > 1 else
            '<p class="note">one judge: no agreement to measure</p>',
            figures.before_after(revised) if len(revised) else '<p class="note">no sample was revised</p>']
    return section("scores", grid(*parts, *rest[:2]), rest[2],
                   table(collect.prefixed(run.metrics.get("critique", {}), "judge.")))


def _mix(run: collect.Run) -> str:
    cover, kinds = collect.coverage(run.chunks, run.generated, run.decided), collect.per_kind(run)
    return section("coverage and mix",
                   figures.bars(cover, "source", ["chunks", "used", "accepted"], "fig-coverage",
                                "Seed chunks per file: all, used, with an accepted sample") if len(cover) else "",
                   table(cover, "no chunks yet"),
                   figures.bars(kinds, "kind", [c for c in kinds.columns if c != "kind"], "fig-kinds",
                                "Samples per kind") if len(kinds) else "", table(kinds, "no samples yet"),
                   "<h3>Diversity (generate)</h3>", table(collect.prefixed(run.metrics.get("generate", {}), "diversity.")))


def _compare_metrics(run: collect.Run, other: dict[str, Any]) -> str:
    def value(metrics: dict[str, Any], stage: str, key: str) -> str:
        found = metrics.get(stage, {}).get(key)
        return "" if found is None else str(found)
    rows = [(stage, key, value(other["metrics"], stage, key), value(run.metrics, stage, key))
            for stage in collect.STAGES
            for key in sorted(set(run.metrics.get(stage, {})) | set(other["metrics"].get(stage, {})))]
    frame = pd.DataFrame(rows, columns=["stage", "metric", other["rev"], "this run"])
    changed = frame[frame[other["rev"]] != frame["this run"]]
    return section("compare", f"<p>{len(changed)} of {len(frame)} metrics differ from {html.escape(other['rev'])}:</p>",
                   table(changed, "no metric differs"))


def build(out: str | Path, paths: collect.Paths = collect.DEFAULT, plots_dir: str | Path | None = None,
          compare: dict[str, Any] | None = None, allow: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Write the report to `out` (and the dvc plots CSVs to `plots_dir`); return flat metrics.

    `compare`: {"rev", "metrics", "rejected" (DataFrame or None), "why"} from assay.report.compare."""
    run = collect.load_run(paths)
    sections = [_compare_metrics(run, compare)] if compare else []
    sections += [_funnel_section(run, compare), _rejections(run, compare), _scores(run), _mix(run),
                 section("tokens and cost", table(collect.usage(run.metrics), "no LLM calls recorded")),
                 section("samples", browser(run.decided if len(run.decided) else run.critiqued if len(run.critiqued)
                                            else run.generated, run.critiqued, run.chunks, allow)),
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
    shown = len(run.decided) or len(run.critiqued) or len(run.generated)
    return {"samples": shown, "html_bytes": len(text.encode("utf-8")), "missing_inputs": len(run.missing)}

"""Small CSV files behind dvc.yaml's `plots` (`dvc plots show`, `dvc plots diff v1 v2`): the
funnel, rejection reasons by rows, the critique's score distributions and revision gains."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from assay.report import collect

BIN_EDGES = [b / 20 for b in range(20)]  # 0.05 wide; 1.0 falls in the last bin


def binned(series: pd.Series) -> list[int]:
    """Counts per 0.05 bin over 0-1 (NaN left out)."""
    values = pd.to_numeric(series, errors="coerce").dropna()
    bins = (values * 20).floordiv(1).clip(0, 19).astype(int)
    return [int((bins == b).sum()) for b in range(20)]


def score_table(run: collect.Run) -> pd.DataFrame:
    """Per score bin: first-round mean judge P(Yes), P(signals), P(grounded) counts."""
    judges, signals = collect.judge_scores(run.critiqued), collect.signal_scores(run.critiqued)
    empty = pd.Series(dtype=float)
    return pd.DataFrame({"bin": BIN_EDGES,
                         "judge_mean": binned(judges.mean(axis=1) if len(judges.columns) else empty),
                         "p_signals": binned(signals.get("p_signals", empty)),
                         "p_grounded": binned(signals.get("p_grounded", empty))})


def write(run: collect.Run, folder: str | Path) -> list[Path]:
    """Write funnel.csv, reasons.csv, scores.csv, revision.csv under `folder`; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        "funnel.csv": pd.DataFrame([(s, c) for s, c in collect.funnel(run.metrics) if c is not None],
                                   columns=["step", "count"]),
        "reasons.csv": collect.reason_rows(run.decided)[["reason", "rows"]],
        "scores.csv": score_table(run),
        "revision.csv": collect.revision(run.critiqued),
    }
    for name, frame in tables.items():
        frame.to_csv(folder / name, index=False)
    return [folder / name for name in tables]

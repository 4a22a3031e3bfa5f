"""Plotly figures of a run as HTML fragments. plotly.js is inlined once by the page (never a CDN
link), so the report opens offline; div ids are fixed so the same run gives the same bytes."""

from __future__ import annotations

from typing import Any

import pandas as pd

BINS = {"start": 0.0, "end": 1.0001, "size": 0.05}
CONFIG = {"displaylogo": False, "responsive": True}


def plotly_js() -> str:
    """plotly.min.js from the installed plotly wheel (to inline into the page)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def label(value: Any) -> str:
    """A category name as plotly may show it: plotly reads some tags in text, and the names
    come from seeds (file names) or models, so angle brackets are swapped for look-alikes."""
    return str(value).replace("<", "\u2039").replace(">", "\u203a")


def _html(fig: Any, div_id: str, title: str, height: int = 360) -> str:
    fig.update_layout(title=title, height=height, margin={"l": 60, "r": 20, "t": 50, "b": 50},
                      template="plotly_white")
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=CONFIG)


def funnel(steps: dict[str, list[tuple[str, Any]]]) -> str:
    """One funnel trace per run label ({label: [(step, count)]}); steps with no count are left out."""
    import plotly.graph_objects as go

    fig = go.Figure([go.Funnel(name=label(name), y=[s for s, c in pairs if c is not None],
                               x=[c for _, c in pairs if c is not None], textinfo="value")
                     for name, pairs in steps.items()])
    return _html(fig, "fig-funnel", "Funnel: seed files to exported rows", 420)


def bars(table: pd.DataFrame, category: str, values: list[str], div_id: str, title: str,
         horizontal: bool = False) -> str:
    """Grouped bars: one trace per column of `values`, one group per `category` value."""
    import plotly.graph_objects as go

    cats = [label(c) for c in table[category]]
    fig = go.Figure([go.Bar(name=v, x=table[v] if horizontal else cats, y=cats if horizontal else table[v],
                            orientation="h" if horizontal else "v") for v in values])
    fig.update_layout(barmode="group")
    if horizontal:
        fig.update_yaxes(autorange="reversed")
    return _html(fig, div_id, title, max(300, 40 + 28 * len(cats)) if horizontal else 360)


def histograms(columns: dict[str, pd.Series], div_id: str, title: str, x_title: str) -> str:
    """Overlaid histograms over 0-1 (0.05 bins), one per named series (NaN dropped)."""
    import plotly.graph_objects as go

    fig = go.Figure([go.Histogram(x=s.dropna(), name=label(n), xbins=BINS, opacity=0.6)
                     for n, s in columns.items()])
    fig.update_layout(barmode="overlay", xaxis_title=x_title, yaxis_title="samples", xaxis_range=[0, 1])
    return _html(fig, div_id, title)


def boxes(frame: pd.DataFrame, div_id: str, title: str) -> str:
    """One box per column (the grounding signals of the first round)."""
    import plotly.graph_objects as go

    fig = go.Figure([go.Box(y=frame[c].dropna(), name=label(c), boxpoints="all", jitter=0.4) for c in frame.columns])
    fig.update_layout(showlegend=False)
    return _html(fig, div_id, title, 420)


def agreement(judges: pd.DataFrame) -> str:
    """Heatmap of pairwise Spearman correlations of the judges' first-round P(Yes)."""
    import plotly.graph_objects as go

    corr = judges.rank().corr(min_periods=3).round(3)  # Spearman = Pearson on ranks
    names = [label(c) for c in corr.columns]
    fig = go.Figure(go.Heatmap(z=corr.values, x=names, y=names, zmin=-1, zmax=1, colorscale="RdBu",
                               text=corr.values, texttemplate="%{text}"))
    return _html(fig, "fig-agreement", "Judge agreement (Spearman of first-round P(Yes))")


def before_after(table: pd.DataFrame) -> str:
    """Scatter of P(grounded) before (first round) and after (last round) revision."""
    import plotly.graph_objects as go

    fig = go.Figure([go.Scatter(x=table["before"], y=table["after"], mode="markers", name="revised sample",
                                text=[label(i) for i in table["id"]]),
                     go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="no change", line={"dash": "dot"})])
    fig.update_layout(xaxis_title="P(grounded) first round", yaxis_title="P(grounded) last round",
                      xaxis_range=[0, 1], yaxis_range=[0, 1])
    return _html(fig, "fig-revision", "Score before vs after revision")

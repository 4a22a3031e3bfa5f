"""critique under `executor: ray`: the samples in shards, each shard through the local critique
loop in an actor (every sample's loop is independent); rows and states come back in input order."""

from __future__ import annotations

from typing import Any

import pandas as pd

from assay.config import Critique
from assay.scale import Session


def critique_work(shard: pd.DataFrame, models: dict[str, Any], scores: Any, ctx: dict[str, Any]):
    from assay.critique import panel_models
    from assay.critique.loop import initial_states, run_rounds, to_frame

    states = initial_states(shard, ctx["chunks"])
    run_rounds(states, panel_models(ctx["cfg"], models, ctx["roles"]), ctx["cfg"])
    return to_frame(shard, states), states


def critique(session: Session, samples: pd.DataFrame, chunks: pd.DataFrame, cfg: Critique, roles: Any):
    """assay.critique.critique over the cluster: (rows, metrics, final states)."""
    from assay.critique.loop import to_frame
    from assay.critique.metrics import critique_metrics

    parts = session.map(samples, critique_work, {"chunks": chunks, "cfg": cfg, "roles": roles})
    judged = pd.concat([f for f, _ in parts], ignore_index=True) if parts else to_frame(samples, [])
    states = [s for _, shard_states in parts for s in shard_states]
    return judged, critique_metrics(states, len(samples), cfg), states

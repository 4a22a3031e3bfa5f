"""Critique: grounding signals (deterministic checks, judges' Yes/No verdicts read as
probabilities), one calibrated decision over them, reward scores; an orchestrator routes
consolidated feedback into revisions, up to `critique.max_rounds`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from assay.config import Critique
from assay.critique.loop import Models, State, initial_states, run_rounds, to_frame
from assay.critique.metrics import critique_metrics
from assay.critique.reward import make_reward
from assay.llm import ChatModel
from assay.roles import Roles


def panel_models(cfg: Critique, models: dict[str, ChatModel], roles: Roles) -> Models:
    """The critique roles bound to the clients in `models` (by endpoint name)."""
    return Models(judges=[models[j] for j in roles.judges], reviser=models[roles.reviser],
                  reward=make_reward(cfg.reward, models, roles.reward),
                  agent=models[roles.orchestrator] if roles.orchestrator else None)


def critique(samples: pd.DataFrame, chunks: pd.DataFrame, models: Models,
             cfg: Critique) -> tuple[pd.DataFrame, dict[str, Any], list[State]]:
    """Run the loop over every parsed sample; returns (rows, metrics, final states)."""
    states = initial_states(samples, chunks)
    run_rounds(states, models, cfg)
    return to_frame(samples, states), critique_metrics(states, len(samples), cfg), states


__all__ = ["Models", "critique", "panel_models"]

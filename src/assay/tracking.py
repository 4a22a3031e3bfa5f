"""MLflow logging (the only importer of mlflow): one parent run per pipeline run, one nested run
per stage.

DVC runs each stage in its own process, so stages find their parent run by a key: the git commit,
the params file content and the DVC experiment name. Stages of one `dvc repro` / `dvc exp run`
share it; a changed param or commit starts a new parent. Default store: `sqlite:///mlflow.db` in
the repository (artifacts in `mlartifacts/`); `MLFLOW_TRACKING_URI` overrides.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import Any

from assay.records import content_hash

log = logging.getLogger(__name__)
EXPERIMENT = os.environ.get("ASSAY_MLFLOW_EXPERIMENT", "assay")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flatten(value, f"{name}.")
        else:
            out[name] = value
    return out


def _setup(mlflow) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}"
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=Path("mlartifacts").resolve().as_uri())
    return mlflow.set_experiment(EXPERIMENT).experiment_id


def _parent(mlflow, experiment_id: str, params: dict[str, Any], params_text: str) -> str:
    commit = _git("rev-parse", "HEAD") or "no-git"
    exp_name = os.environ.get("DVC_EXP_NAME", "")
    key = content_hash(commit, params_text, exp_name)
    found = mlflow.search_runs([experiment_id], filter_string=f"tags.`assay.pipeline_key` = '{key}'",
                               max_results=1, output_format="list")
    if found:
        return found[0].info.run_id
    name = exp_name or _git("describe", "--tags", "--always", "--dirty") or "pipeline"
    tags = {"assay.pipeline_key": key, "git.commit": commit, "dvc.exp_name": exp_name}
    with mlflow.start_run(run_name=f"{name}-{key[:6]}", tags=tags) as run:
        flat = {k: str(v)[:500] for k, v in flatten(params).items()}
        items = list(flat.items())
        for start in range(0, len(items), 100):
            mlflow.log_params(dict(items[start : start + 100]))
    return run.info.run_id


def log_stage(stage: str, metrics: dict[str, Any], params: dict[str, Any], params_text: str,
              artifacts: list[Path] | None = None) -> str | None:
    """Log one stage as a nested run; returns its run id, or None (with a warning) if MLflow
    is unreachable: the stage's outputs and metrics file are still written."""
    try:
        import mlflow

        experiment_id = _setup(mlflow)
        parent_id = _parent(mlflow, experiment_id, params, params_text)
        with mlflow.start_run(run_id=parent_id), mlflow.start_run(run_name=stage, nested=True) as run:
            numeric = {k: float(v) for k, v in metrics.items()
                       if isinstance(v, int | float) and not isinstance(v, bool) and v == v}
            mlflow.log_metrics(numeric)
            mlflow.set_tags({f"metric.{k}": str(v)[:500] for k, v in metrics.items() if k not in numeric})
            mlflow.set_tag("assay.stage", stage)
            for path in artifacts or []:
                mlflow.log_artifact(str(path))
            return run.info.run_id
    except Exception as exc:  # tracking must never cost the user their data
        log.warning("MLflow logging for stage %s failed (%s: %s); metrics/%s.json is still written",
                    stage, type(exc).__name__, exc, stage)
        return None

"""MLflow logging (the only importer of mlflow): one parent run per pipeline run, one nested run
per stage.

DVC runs each stage in its own process, so stages find their parent run by a key: the git commit,
the params file content, the DVC experiment name and the release tag. Stages of one `dvc repro` /
`dvc exp run` share it; a changed param or commit starts a new parent. The parent is named after
the git tag being released (or on HEAD), else the DVC experiment name. Default store: `sqlite:///mlflow.db` in
the repository (artifacts in `mlartifacts/`); `MLFLOW_TRACKING_URI` overrides.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

from assay.records import content_hash
from assay.release import release_tag, uncommitted

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


def lineage_tags(params_text: str) -> dict[str, str]:
    """git commit, dirty flag (uncommitted inputs, stage outputs aside) and params file sha256."""
    dirty = uncommitted()
    return {"git.commit": _git("rev-parse", "HEAD") or "no-git", "git.dirty": str(bool(dirty)).lower(),
            "git.dirty_files": ", ".join(dirty)[:500],
            "params.sha256": hashlib.sha256(params_text.encode("utf-8")).hexdigest()}


def _parent(mlflow, experiment_id: str, params: dict[str, Any], params_text: str,
            lineage: dict[str, str]) -> str:
    commit = lineage["git.commit"]
    exp_name = os.environ.get("DVC_EXP_NAME", "")
    release = release_tag()  # `assay release` names the tag before it exists
    key = content_hash(commit, params_text, exp_name, release)
    found = mlflow.search_runs([experiment_id], filter_string=f"tags.`assay.pipeline_key` = '{key}'",
                               max_results=1, output_format="list")
    if found:
        return found[0].info.run_id
    name = release or exp_name or f"{_git('describe', '--tags', '--always', '--dirty') or 'pipeline'}-{key[:6]}"
    tags = {"assay.pipeline_key": key, "dvc.exp_name": exp_name, "assay.release": release, **lineage}
    with mlflow.start_run(run_name=name, tags=tags) as run:
        flat = {k: str(v)[:500] for k, v in flatten(params).items()}
        items = list(flat.items())
        for start in range(0, len(items), 100):
            mlflow.log_params(dict(items[start : start + 100]))
    return run.info.run_id


def _log_dataset(mlflow, stage: str, path: Path) -> None:
    """A Parquet output as an MLflow dataset input (schema, digest, row count; source = the path).
    The source is built as a "local" one: a path string would match both of MLflow's local
    sources and warn that it "can be interpreted in multiple ways"."""
    import json

    import pandas as pd
    from mlflow.data.dataset_source_registry import get_dataset_source_from_json

    split = path.name.split("-")[0]
    source = get_dataset_source_from_json(json.dumps({"uri": str(path.resolve())}), source_type="local")
    dataset = mlflow.data.from_pandas(pd.read_parquet(path), source=source, name=f"{stage}-{split}")
    mlflow.log_input(dataset, context=split)


def log_stage(stage: str, metrics: dict[str, Any], params: dict[str, Any], params_text: str,
              artifacts: list[Path] | None = None) -> str | None:
    """Log one stage as a nested run; returns its run id, or None (with a warning) if MLflow
    is unreachable: the stage's outputs and metrics file are still written. Parquet artifacts
    are logged as dataset inputs (mlflow.data), other files as artifacts."""
    try:
        import mlflow

        experiment_id = _setup(mlflow)
        lineage = lineage_tags(params_text)
        parent_id = _parent(mlflow, experiment_id, params, params_text, lineage)
        with mlflow.start_run(run_id=parent_id), mlflow.start_run(run_name=stage, nested=True) as run:
            numeric = {k: float(v) for k, v in metrics.items()
                       if isinstance(v, int | float) and not isinstance(v, bool) and v == v}
            mlflow.log_metrics(numeric)
            mlflow.set_tags({f"metric.{k}": str(v)[:500] for k, v in metrics.items() if k not in numeric})
            mlflow.set_tags({"assay.stage": stage, **lineage})
            for path in artifacts or []:
                if Path(path).suffix == ".parquet":
                    _log_dataset(mlflow, stage, Path(path))
                else:
                    mlflow.log_artifact(str(path))
            return run.info.run_id
    except Exception as exc:  # tracking must never cost the user their data
        log.warning("MLflow logging for stage %s failed (%s: %s); metrics/%s.json is still written",
                    stage, type(exc).__name__, exc, stage)
        return None


def find_run(rev: str, commit: str = "") -> dict[str, Any] | None:
    """The newest parent run for a release tag, DVC experiment name or git commit, with its
    stages' metrics as `<stage>.<metric>`; None when there is none (or MLflow is unreachable)."""
    if not os.environ.get("MLFLOW_TRACKING_URI") and not Path("mlflow.db").is_file():
        return None
    try:
        import mlflow

        experiment_id = _setup(mlflow)
        clauses = [f"tags.`assay.release` = '{rev}'", f"tags.`dvc.exp_name` = '{rev}'"]
        clauses += [f"tags.`git.commit` = '{commit}'"] if commit else []
        for clause in clauses:
            runs = mlflow.search_runs([experiment_id], filter_string=clause, order_by=["start_time DESC"],
                                      max_results=1, output_format="list")
            if runs:
                parent = runs[0]
                children = mlflow.search_runs(
                    [experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
                    output_format="list")
                metrics = {f"{c.info.run_name}.{k}": v for c in children for k, v in c.data.metrics.items()}
                return {"run_id": parent.info.run_id, "run_name": parent.info.run_name, "metrics": metrics}
    except Exception as exc:  # comparing must work without a tracking server
        log.warning("MLflow lookup for %s failed (%s: %s)", rev, type(exc).__name__, exc)
    return None

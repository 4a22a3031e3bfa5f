import json
import warnings

import mlflow
import pytest

from assay import tracking


@pytest.mark.integration
def test_stages_nest_under_one_parent_run_per_pipeline_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "card.md").write_text("# card")
    params = {"generate": {"endpoint": "gen", "max_tokens": 10}}
    a = tracking.log_stage("ingest", {"chunks": 3, "note": "text"}, params, "v1")
    b = tracking.log_stage("export", {"rows": 2}, params, "v1", [tmp_path / "card.md"])
    c = tracking.log_stage("filter", {"accepted": 1}, params, "v2 (changed threshold)")
    client = mlflow.tracking.MlflowClient()
    runs = {r: client.get_run(r) for r in (a, b, c)}
    parent = runs[a].data.tags["mlflow.parentRunId"]
    assert runs[b].data.tags["mlflow.parentRunId"] == parent
    assert runs[c].data.tags["mlflow.parentRunId"] != parent
    assert runs[a].data.metrics == {"chunks": 3.0} and runs[a].data.tags["metric.note"] == "text"
    assert client.get_run(parent).data.params["generate.max_tokens"] == "10"
    assert [f.path for f in client.list_artifacts(b)] == ["card.md"]


def test_tracking_failure_never_fails_the_stage(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "unknown-scheme://nowhere")
    assert tracking.log_stage("ingest", {"chunks": 1}, {}, "") is None
    assert "MLflow logging for stage ingest failed" in caplog.text


@pytest.mark.integration
def test_release_run_is_named_after_the_tag_and_logs_the_dataset_as_input(tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("ASSAY_RELEASE_TAG", "v7")
    pd.DataFrame({"id": ["a", "b"], "score": [4.0, 5.0]}).to_parquet(tmp_path / "train-00000-of-00001.parquet")
    (tmp_path / "samples.json").write_text("{}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_id = tracking.log_stage("export", {"rows": 2}, {}, "p", [tmp_path / "train-00000-of-00001.parquet",
                                                                      tmp_path / "samples.json"])
    assert not [w for w in caught if "interpreted in multiple ways" in str(w.message)]
    client = mlflow.tracking.MlflowClient()
    run = client.get_run(run_id)
    assert [f.path for f in client.list_artifacts(run_id)] == ["samples.json"]
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "export-train" and dataset_input.tags[0].value == "train"
    assert dataset_input.dataset.source_type == "local"
    assert json.loads(dataset_input.dataset.source)["uri"] == str(tmp_path / "train-00000-of-00001.parquet")
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.info.run_name == "v7" and parent.data.tags["assay.release"] == "v7"
    found = tracking.find_run("v7")
    assert found["run_name"] == "v7" and found["metrics"] == {"export.rows": 2.0}
    assert tracking.find_run("v8") is None

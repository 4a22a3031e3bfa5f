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

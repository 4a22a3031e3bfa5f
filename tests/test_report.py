"""`assay report`: the HTML report of a run (self-contained, escaped, no PII), its numbers, the
dvc plots files behind dvc.yaml's `plots`, the stage script and `--compare`."""

import html
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from assay import cli
from assay.report import build, collect, figures
from assay.report.samples import Masker, highlight
from tests.report_fixture import EMAIL, PHONE, SCRIPT, SEED_PII, make_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    paths = make_run(root)
    metrics = build(root / "reports" / "report.html", paths, plots_dir=root / "reports" / "plots")
    return root, paths, (root / "reports" / "report.html").read_text(encoding="utf-8"), metrics


def test_report_is_self_contained_and_deterministic(report, tmp_path):
    root, paths, text, metrics = report
    assert metrics["samples"] == 4 and metrics["missing_inputs"] == 0
    assert figures.plotly_js() in text  # plotly.js inlined, once
    page = text.replace(figures.plotly_js(), "")
    assert "<script src" not in page and "src=" not in page and 'href="http' not in page  # nothing fetched
    assert page.count("Plotly.newPlot") >= 6
    for section in ("funnel", "rejections", "scores", "coverage-and-mix", "tokens-and-cost", "samples"):
        assert f'id="{section}"' in text
    build(tmp_path / "again.html", paths)
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == text  # same run, same bytes


def test_planted_pii_of_a_rejected_sample_never_appears(report):
    _, _, text, _ = report
    text = text.replace(figures.plotly_js(), "")
    for secret in (EMAIL, PHONE, html.escape(EMAIL), "jane.doe", "555 0199", *SEED_PII, "7946"):
        assert secret not in text, secret
    assert "Model H2-2026, 3 units." in text  # numbers that are no phone number stay
    assert "[EMAIL_ADDRESS]" in text  # masked where it was (messages, quote, chunk)
    assert "<td>EMAIL_ADDRESS</td><td>" in text and "<td>PHONE_NUMBER</td>" in text  # type + offsets shown


def test_script_from_a_seed_is_escaped(report):
    _, _, text, _ = report
    assert SCRIPT not in text
    assert html.escape(SCRIPT) in text


def test_reasons_count_rows_not_reasons(report):
    _, paths, _, _ = report
    table = collect.reason_rows(collect.load_run(paths).decided).set_index("reason")
    assert table.loc["pii", "rows"] == 1  # two PII findings, one row
    assert table["first"].sum() == 2 == table.loc[["pii", "critique_reject"], "first"].sum()


def test_collected_numbers(report):
    _, paths, _, _ = report
    run = collect.load_run(paths)
    assert dict(collect.funnel(run.metrics))["exported"] == 2 and run.exported == 2
    assert collect.revision(run.critiqued).to_dict("records") == [{"id": "s-rev", "before": 0.2, "after": 0.8}]
    assert list(collect.judge_scores(run.critiqued).columns) == ["a", "b"]
    cover = collect.coverage(run.chunks, run.generated, run.decided).set_index("source")
    assert cover.loc["returns.md"].tolist() == [2, 2, 1] and cover.loc["tickets.jsonl"].tolist() == [1, 1, 0]
    kinds = collect.per_kind(run).set_index("kind")
    assert kinds.loc["qa"].tolist() == [2, 2, 2] and kinds.loc["refusal", "filter accepted"] == 0
    assert collect.usage(run.metrics).set_index("stage").loc["generate", "cost_usd"] == 0.002
    detail = collect.usage_detail(run.metrics).set_index("who")
    assert detail.loc["kind qa", ["calls", "cost_usd"]].tolist() == [2, 0.001]
    assert detail.loc["qwen2.5-1.5b.judge", "calls"] == 10 and len(detail) == 2


def test_revision_diff_and_evidence_highlight(report):
    _, _, text, _ = report
    assert '<span class="del">-assistant: Returns take 90 days and refunds are instant.</span>' in text
    assert "<mark>Returns are accepted within 30 days.</mark>" in text
    assert highlight("A <b> c", ["<b>"], Masker({})) == "A <mark>&lt;b&gt;</mark> c"
    masker = Masker({}, allow=["brightwell"])
    assert masker.mask("mail help@brightwell.example, x@y.org, call (415) 555-0100 by 2026-12-01") == \
        "mail help@brightwell.example, [EMAIL_ADDRESS], call [PHONE_NUMBER] by 2026-12-01"


def test_missing_outputs_are_reported_not_fatal(tmp_path):
    metrics = build(tmp_path / "r.html", collect.Paths(*(tmp_path / n for n in "abcdefg")))
    assert metrics["missing_inputs"] == 5 and "No samples yet" in (tmp_path / "r.html").read_text()


def _plots_yaml() -> dict:
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    return {"plots": [p for p in spec["plots"]
                      if any(str(f).startswith("reports/plots/") for f in next(iter(p.values()))["y"])]}


@pytest.mark.integration
def test_dvc_plots_show_reads_the_written_files(report, tmp_path):
    root, _, _, _ = report
    shutil.copytree(root / "reports" / "plots", tmp_path / "reports" / "plots")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(_plots_yaml()))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(["dvc", "init", "-q", "--no-scm"], cwd=tmp_path, check=True, env=env)
    done = subprocess.run(["dvc", "plots", "show", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)["data"]
    assert sorted(shown) == ["first-round scores", "funnel", "rejected rows per reason", "revision gain"]
    for name, plot in shown.items():
        values = plot[0]["content"]["data"]["values"]
        assert values and not plot[0].get("errors"), name
    funnel = {v["step"]: int(v["count"]) for v in shown["funnel"][0]["content"]["data"]["values"]}
    assert funnel["exported"] == 2 and funnel["seed files"] == 2


@pytest.mark.integration
def test_stage_script_writes_report_plots_and_metrics(report, tmp_path):
    root, paths, _, _ = report
    args = [sys.executable, str(ROOT / "stages" / "report.py"), "--params", str(ROOT / "params.yaml"), "--no-mlflow",
            "--metrics", str(tmp_path / "report.json"), "--out", str(tmp_path / "r.html"), "--plots", str(tmp_path / "p")]
    for flag, path in (("--metrics-dir", paths.metrics), ("--chunks", paths.chunks), ("--generated", paths.generated),
                       ("--critiqued", paths.critiqued), ("--accepted", paths.accepted),
                       ("--rejected", paths.rejected), ("--export", paths.export)):
        args += [flag, str(path)]
    done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "report.json").read_text())["samples"] == 4
    assert pd.read_csv(tmp_path / "p" / "funnel.csv")["count"].tolist() == [2, 3, 3, 4, 4, 4, 1, 3, 2, 2]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True, capture_output=True)


@pytest.mark.integration
def test_compare_shows_two_revisions_side_by_side(report, tmp_path, monkeypatch, capsys):
    root, _, _, _ = report
    repo = tmp_path / "repo"
    shutil.copytree(root, repo)
    _git(repo, "init", "-q")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(["dvc", "init", "-q"], cwd=repo, check=True, env=env)
    subprocess.run(["dvc", "add", "-q", "data/filtered/rejected.parquet"], cwd=repo, check=True, env=env)
    _git(repo, "add", "metrics", ".dvc", "data/filtered/rejected.parquet.dvc", "data/filtered/.gitignore")
    _git(repo, "commit", "-qm", "v1")
    _git(repo, "tag", "v1")
    (repo / "metrics" / "export.json").write_text(json.dumps({"rows": 7}))
    monkeypatch.chdir(repo)
    assert cli.main(["report", "--compare", "v1"]) == 0
    out = capsys.readouterr().out
    assert "export    rows=7" in out and "report-vs-v1.html" in out
    text = (repo / "reports" / "report-vs-v1.html").read_text(encoding="utf-8")
    assert "<td>export</td>\n      <td>rows</td>\n      <td>2</td>\n      <td>7</td>" in text
    at_v1 = text[text.index("Rows per reason at v1"):]
    assert at_v1.index("<td>pii</td>") < at_v1.index("</table>")  # v1's rejected rows, read through DVC
    (repo / ".dvc" / "cache").rename(repo / "gone")  # v1's data no longer cached: its metrics instead
    assert cli.main(["report", "--compare", "v1"]) == 0
    assert "reason counts from its metrics" in (repo / "reports" / "report-vs-v1.html").read_text(encoding="utf-8")
    assert cli.main(["report", "--compare", "no-such-rev"]) == 2
    assert "not a git revision" in capsys.readouterr().err


def test_a_judge_not_asked_is_shown_and_left_out_of_the_scores():
    """The critique skips a judge whose verdict could not change the decision (p_yes None)."""
    from assay.report.samples import _round

    r = {"round": 1, "p_grounded": 0.2, "p_signals": 0.2, "decision": {"decision": "revise", "by": "rules"},
         "judges": [{"judge": "qwen-0.5b", "model": "m", "p_yes": None, "error": None,
                     "skipped": "evidence veto"},
                    {"judge": "other", "model": "m", "p_yes": 0.75, "error": None}]}
    text = _round(r, Masker({}))
    assert "qwen-0.5b not asked (evidence veto)" in text and "other 0.75" in text
    critiqued = pd.DataFrame({"id": ["s1"], "critique": [json.dumps({"rounds": [r]})]})
    scores = collect.judge_scores(critiqued)
    assert list(scores.columns) == ["other"] and scores.loc["s1", "other"] == 0.75

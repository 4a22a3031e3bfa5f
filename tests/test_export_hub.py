"""Hub contract test: push two tagged versions to the loopback Hub (tests/hub_stub.py), load each
back by tag with `datasets.load_dataset`. It checks our use of huggingface_hub / datasets against
the endpoints they call, not the real Hub.

huggingface_hub reads HF_ENDPOINT and the offline switches at import, so the client side runs in a
subprocess with its own environment."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.hub_stub import TOKEN, HubStub

CLIENT = textwrap.dedent("""
    import json, sys
    import datasets, pandas as pd
    from assay.export import write_export
    from assay.hub import push

    out, cache, tag, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    rows = pd.DataFrame([
        {"id": f"s{i}", "task": "qa", "seed_ids": [f"c{i}"], "evidence": ["q"], "evidence_ok": True,
         "generation": json.dumps({"model": "gen"}), "error": None, "raw": None, "critique": "{}",
         "score": 4.0, "verdict": "accept",
         "messages": [{"role": "user", "content": f"{tag} Q{i}?"}, {"role": "assistant", "content": "A."}]}
        for i in range(n)])
    write_export(rows, out, name="demo", license="cc-by-4.0", description="d", params={}, models=[],
                 stage_metrics={})
    push(out, "tester/demo", private=True, tag=tag)
    for rev in sys.argv[5:]:
        ds = datasets.load_dataset("tester/demo", revision=rev, cache_dir=f"{cache}/{rev}")
        print(json.dumps({"rev": rev, "rows": {k: v.num_rows for k, v in ds.items()},
                          "first": sorted(m[0]["content"] for s in ds.values() for m in s["messages"])[0]}))
""")


def _client(stub, tmp_path, tag, n, *load_revs, token=TOKEN):
    env = {**os.environ, "HF_ENDPOINT": stub.url, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_TOKEN": token,
           "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf")}
    return subprocess.run([sys.executable, "-c", CLIENT, str(tmp_path / tag), str(tmp_path / "cache"), tag,
                           str(n), *load_revs], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.integration
def test_push_tag_and_load_back_each_version(tmp_path):
    with HubStub() as stub:
        first = _client(stub, tmp_path, "v1", 20)
        assert first.returncode == 0, first.stderr[-3000:]
        second = _client(stub, tmp_path, "v2", 5, "v1", "v2")
        assert second.returncode == 0, second.stderr[-3000:]
    loaded = {d["rev"]: d for d in map(json.loads, second.stdout.splitlines())}
    assert sum(loaded["v1"]["rows"].values()) == 20 and loaded["v1"]["first"].startswith("v1 ")
    assert sum(loaded["v2"]["rows"].values()) == 5 and loaded["v2"]["first"].startswith("v2 ")
    repo = stub.repos["tester/demo"]
    assert repo.private and repo.tags == {"v1", "v2"}
    assert not stub.unknown
    # the token authenticates every write and is never printed or written
    assert all(a == f"Bearer {TOKEN}" for (m, _), a in zip(stub.requests, stub.auth_headers, strict=True)
               if m == "POST")
    assert TOKEN not in first.stdout + first.stderr + second.stdout + second.stderr
    assert not any(TOKEN.encode() in p.read_bytes() for p in (tmp_path / "v1").rglob("*") if p.is_file())


@pytest.mark.integration
def test_a_bad_token_fails_with_a_message_naming_the_repo(tmp_path):
    with HubStub() as stub:
        done = _client(stub, tmp_path, "v1", 3, token="hf_wrong")
    assert done.returncode != 0
    assert "Hub push to tester/demo failed (HTTP 401)" in done.stderr and "hf_wrong" not in done.stderr


def test_push_names_what_is_missing_before_any_request(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from assay.errors import AssayError
    from assay.hub import push

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(AssayError, match="HF_HUB_OFFLINE=1 is set"):
        push(tmp_path, "o/n")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(AssayError, match="HF_TOKEN is not set"):
        push(tmp_path, "o/n")

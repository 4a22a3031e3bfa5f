import json

import datasets
import pandas as pd

from assay.export import write_export

ROWS = pd.DataFrame([
    {"id": f"s{i}", "task": "qa", "seed_ids": ["c1"], "evidence": ["quote"], "evidence_ok": True,
     "generation": json.dumps({"model": "gen@abc"}), "error": None, "raw": None, "critique": "{}",
     "score": 4.5, "verdict": "accept",
     "messages": [{"role": "user", "content": f"Q{i}?"}, {"role": "assistant", "content": f"A{i}."}]}
    for i in range(3)
])


def export(tmp_path, rows=ROWS):
    return write_export(rows, tmp_path / "export", name="demo", license="cc-by-4.0", description="Demo set.",
                        params={"generate": {"endpoint": "gen"}},
                        models=[{"endpoint": "gen", "model": "qwen", "server": "embedded llama.cpp (127.0.0.1)"}],
                        stage_metrics={"filter": {"accepted": 3, "reason.duplicate": 2, "toxicity_backend": "profanity"}})


def test_export_loads_with_datasets_and_has_a_card(tmp_path):
    metrics = export(tmp_path)
    assert metrics["rows"] == 3 and metrics["toxicity_backend"] == "profanity"
    loaded = datasets.load_dataset(str(tmp_path / "export"), split="train")
    assert loaded.num_rows == 3
    assert loaded[0]["messages"] == [{"role": "user", "content": "Q0?"}, {"role": "assistant", "content": "A0."}]
    assert loaded[0]["generator"] == "gen@abc"
    card = (tmp_path / "export" / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "reason.duplicate | 2" in card and "`profanity`" in card
    assert "qwen" in card


def test_reexport_replaces_the_folder_atomically(tmp_path):
    export(tmp_path)
    (tmp_path / "export" / "stale.txt").write_text("old")
    export(tmp_path, ROWS.head(1))
    assert not (tmp_path / "export" / "stale.txt").exists()
    # datasets caches by file path + mtime: a re-export within the same second needs a fresh cache
    fresh = datasets.load_dataset(str(tmp_path / "export"), split="train", cache_dir=str(tmp_path / "hf"))
    assert fresh.num_rows == 1
    assert not (tmp_path / ".export.tmp").exists()

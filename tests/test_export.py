import json

import datasets
import pandas as pd
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from assay.config import Export, Splits
from assay.export import (
    FEATURES,
    assign_splits,
    rejection_summary,
    sample_table,
    score_histogram,
    seed_hashes,
    write_export,
)


def rows(n=30, chunks=10):
    return pd.DataFrame([
        {"id": f"s{i:03d}", "task": "qa", "seed_ids": [f"c{i % chunks}", "other"], "evidence": ["quote"],
         "evidence_ok": True, "generation": json.dumps({"model": "gen@abc"}), "error": None, "raw": None,
         "critique": "{}", "score": 0.95, "verdict": "accept",
         "messages": [{"role": "user", "content": f"Q{i}? é"}, {"role": "assistant", "content": f"A{i}."}]}
        for i in range(n)
    ])


LINEAGE = {"git_commit": "abc123", "seed_files": {"faq.md": "f" * 64}}


def export(tmp_path, frame=None, out="export", splits=None, lineage=None):
    return write_export(rows() if frame is None else frame, tmp_path / out, name="demo", license="cc-by-4.0",
                        description="Demo set.", params={"generate": {"endpoint": "gen"}},
                        models=[{"endpoint": "gen", "model": "qwen", "server": "embedded llama.cpp (127.0.0.1)"}],
                        stage_metrics={"filter": {"accepted": 3, "reason.duplicate": 2, "toxicity_backend": "profanity"},
                                       "critique": {"score_mean": 4.2, "judge.j.accuracy_mean": 4.1}},
                        splits=splits or Splits(train=0.6, validation=0.2, test=0.2, seed=7), lineage=lineage or LINEAGE)


def test_export_loads_every_split_with_no_source_chunk_in_two_splits(tmp_path):
    metrics = export(tmp_path)
    loaded = datasets.load_dataset(str(tmp_path / "export"), cache_dir=str(tmp_path / "hf"))
    assert sorted(loaded) == ["test", "train", "validation"]
    assert sum(d.num_rows for d in loaded.values()) == 30 == metrics["rows"]
    assert metrics["split.train"] == loaded["train"].num_rows
    chunks = {s: {ids[0] for ids in d["seed_ids"]} for s, d in loaded.items()}
    assert not (chunks["train"] & chunks["validation"] or chunks["train"] & chunks["test"]
                or chunks["validation"] & chunks["test"])
    assert loaded["train"].features == FEATURES
    assert loaded["train"][0]["generator"] == "gen@abc"


def test_openai_jsonl_matches_the_parquet_messages(tmp_path):
    export(tmp_path)
    for split in ("train", "validation", "test"):
        lines = (tmp_path / "export" / "openai" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        table = pd.read_parquet(tmp_path / "export" / "data" / f"{split}-00000-of-00001.parquet")
        assert [json.loads(x) for x in lines] == [{"messages": list(map(dict, m))} for m in table["messages"]]
        assert set(json.loads(lines[0])) == {"messages"}


def test_card_carries_lineage_counts_and_limits(tmp_path):
    metrics = export(tmp_path)
    card = (tmp_path / "export" / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "reason.duplicate | 2" in card and "`profanity`" in card
    assert "`abc123`" in card and f"| faq.md | `{'f' * 64}` |" in card and metrics["params_hash"] in card
    assert "qwen" in card and "judge.j.accuracy_mean | 4.1" in card and "Known limits" in card
    assert "split: validation" in card  # the card's data_files name every split


def test_splits_are_stable_per_chunk_and_follow_the_ratios():
    ids = pd.Series([[f"chunk{i}"] for i in range(2000)])
    names = assign_splits(ids, Splits())
    assert (assign_splits(ids[:10], Splits()) == names[:10]).all()  # more data moves no chunk
    share = names.value_counts(normalize=True)
    assert abs(share["train"] - 0.8) < 0.04 and abs(share["test"] - 0.1) < 0.03
    assert (assign_splits(ids, Splits(train=1, validation=0, test=0)) == "train").all()


def test_same_rows_give_byte_identical_files_in_any_input_order(tmp_path):
    export(tmp_path, out="a")
    export(tmp_path, rows().sample(frac=1, random_state=3), out="b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 7  # 3 parquet, 3 jsonl, README
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_empty_splits_are_left_out_and_reexport_replaces_the_folder(tmp_path):
    export(tmp_path)
    (tmp_path / "export" / "stale.txt").write_text("old")
    export(tmp_path, rows(3, chunks=1))
    assert not (tmp_path / "export" / "stale.txt").exists()
    # datasets caches by file path + mtime: a re-export within the same second needs a fresh cache
    fresh = datasets.load_dataset(str(tmp_path / "export"), cache_dir=str(tmp_path / "hf2"))
    assert sum(d.num_rows for d in fresh.values()) == 3 and len(fresh) == 1
    assert not (tmp_path / ".export.tmp").exists()
    assert export(tmp_path, rows(1).head(0), out="none")["rows"] == 0
    # datasets refuses to load a 0-row split ("corresponds to no data"); the file keeps the schema
    empty = pq.read_table(tmp_path / "none" / "data" / "train-00000-of-00001.parquet")
    assert empty.num_rows == 0 and datasets.Features.from_arrow_schema(empty.schema) == FEATURES


def test_reports_histogram_rejections_and_sample_table(tmp_path):
    export(tmp_path)
    rejected = pd.DataFrame({"id": ["r1", "r2", "r3"], "score": [0.12, 1.0, None],
                             "reasons": [["low_score"], ["pii:EMAIL_ADDRESS", "low_score"], ["error"]]})
    hist = score_histogram(rows(), rejected)
    assert hist["score"].tolist()[0] == 0.0 and hist["accepted"].sum() == 30
    assert hist.set_index("score").loc[0.9, "accepted"] == 30 and hist["rejected"].sum() == 2
    assert hist.set_index("score").loc[0.1, "rejected"] == 1 and hist.set_index("score").loc[0.9, "rejected"] == 1
    summary = rejection_summary(rejected)
    assert summary["low_score"] == {"count": 2, "example_ids": ["r1", "r2"]} and summary["error"]["count"] == 1
    table = sample_table(tmp_path / "export", n=5)
    assert len(table) == 5 and table[0]["messages"][0]["role"] == "user"


def test_seed_hashes_cover_nested_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("a")
    (tmp_path / "sub" / "b.txt").write_text("b")
    hashes = seed_hashes(tmp_path)
    assert list(hashes) == ["a.md", "sub/b.txt"] and len(hashes["a.md"]) == 64


def test_export_params_are_validated():
    with pytest.raises(ValidationError, match="sum to 1"):
        Splits(train=0.9, validation=0.2, test=0.0)
    with pytest.raises(ValidationError, match="hub_repo"):
        Export(dataset_name="d", push_to_hub=True)
    assert Export(dataset_name="d").private and not Export(dataset_name="d").push_to_hub

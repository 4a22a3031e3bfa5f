"""The short table every stage prints at the end: its own in/out rows, rows rejected per reason,
LLM calls and tokens, and the time taken; aligned, a few lines."""

from pathlib import Path

from assay.stage import summary_table
from tests.fault_server import run_script

ROOT = Path(__file__).resolve().parents[1]


def test_table_is_aligned_and_orders_reasons_by_count():
    metrics = {"reason.off_domain": 1, "reason.critique_reject": 6, "reason.pii": 0, "reason.duplicate": 1,
               "llm.calls": 12.0, "llm.cache_hits": 2.0, "llm.prompt_tokens": 4850.0, "llm.completion_tokens": 2395.0,
               "llm.cost_usd": 0.0, "rewrite_llm.calls": 0}
    text = summary_table("filter", [("in", "12 samples"), ("out", "3 accepted, 9 rejected")], metrics, 4.25, 3.9)
    lines = text.splitlines()
    assert lines[0] == "assay filter: done" and len(lines) == 6
    assert lines[3] == "  rejected  critique_reject 6, duplicate 1, off_domain 1"  # zero counts left out
    assert lines[4] == "  llm       12 calls (2 from cache), 4,850 prompt + 2,395 completion tokens"
    assert lines[5] == "  time      4.2 s (3.9 s CPU in this process)"
    assert {line.index(line.split()[1]) for line in lines[1:]} == {12}  # one column for the values


def test_a_stage_prints_its_summary_on_stdout(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "kb.md").write_text("# Battery\n\nThe Lumo Hearth H2 room sensor runs two years on one CR2032 "
                                 "coin cell; replace it when the app shows a low battery warning.\n")
    (seeds / "notes.bin").write_bytes(b"\x00\x01")
    done = run_script("ingest", "--params", str(ROOT / "params.yaml"), "--seeds", str(seeds), "--out", str(tmp_path / "chunks.parquet"),
                      "--metrics", str(tmp_path / "ingest.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    table = done.stdout[done.stdout.index("assay ingest: done"):].splitlines()
    assert table[1:3] == ["  in    2 seed files (1 skipped)", "  out   1 chunks, 32 tokens"], table
    assert table[3].startswith("  time  ") and len(table) == 4

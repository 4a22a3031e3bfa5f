"""`assay show`: one readable block per record, reasons first, turns labelled, text wrapped and
truncated unless --full; --id, --reason and -n pick the rows."""

import pandas as pd
import pytest

from assay.cli import main

LONG = "The sensor keeps its pairing after a battery change. " * 40  # ~2,100 characters


@pytest.fixture()
def rejected(tmp_path):
    rows = [{"id": f"id{i}aaaa", "task": "qa", "verdict": "reject", "score": 0.25,
             "messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": LONG}],
             "evidence": ["quoted sentence"], "seed_ids": ["c1"], "critique": '{"rounds": []}',
             "filter": '{"domain": 0.42, "redacted": []}', "reasons": reasons}
            for i, reasons in enumerate([["critique_reject"], ["pii:EMAIL_ADDRESS", "pii:PERSON"], ["off_domain"]])]
    path = tmp_path / "rejected.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def test_blocks_put_reasons_first_label_turns_and_wrap(rejected, capsys):
    assert main(["show", str(rejected)]) == 0
    out = capsys.readouterr().out
    blocks = out.split("━━ ")[1:]
    assert len(blocks) == 3 and blocks[0].startswith("[1/3] id0aaaa · qa · verdict reject · score 0.25")
    first = blocks[0].splitlines()
    assert first[1].split() == ["REJECTED", "critique_reject"]  # the decision right under the header
    assert [line.split()[0] for line in first if line.startswith("   ") and not line.startswith("    ")][:4] == [
        "REJECTED", "user", "assistant", "evidence"]
    assert max(len(line) for b in blocks for line in b.splitlines()[:-2]) <= 120  # the footer names the path
    assert "(+1719 chars, --full)" in " ".join(out.split()) and "(+ critique: --full)" in out
    assert "domain 0.42" in out and "3 of 3 rows shown" in out


def test_full_id_reason_and_n(rejected, capsys):
    main(["show", str(rejected), "--id", "id1", "--full"])
    out = capsys.readouterr().out
    assert out.count("━━ ") == 1 and "pii:EMAIL_ADDRESS, pii:PERSON" in out and "--full)" not in out
    assert " ".join(out.split()).count("a battery change.") == 40 and '{"rounds": []}' in out
    main(["show", str(rejected), "--reason", "pii"])
    assert "[1/1] id1aaaa" in capsys.readouterr().out
    main(["show", str(rejected), "-n", "1"])
    assert "1 of 3 rows shown" in capsys.readouterr().out


def test_chunks_show_their_text(tmp_path, capsys):
    path = tmp_path / "chunks.parquet"
    pd.DataFrame({"chunk_id": ["c1"], "source": ["faq.md"], "text": ["Short chunk text."], "n_tokens": [4]}).to_parquet(path)
    main(["show", str(path)])
    out = capsys.readouterr().out
    assert "━━ [1/1] c1 · faq.md" in out and "text" in out and "Short chunk text." in out and "n_tokens=4" in out

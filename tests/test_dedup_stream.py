"""The streaming filter (assay.filters.stream): batch by batch from Parquet, it keeps and rejects
the same rows, with the same reasons and metrics, as the whole-frame decision."""

import json
import random
import re

import numpy as np
import pandas as pd

from assay.config import Filter
from assay.filters.decide import decide
from assay.filters.report import metrics
from assay.filters.scores import ScoreCache
from assay.filters.scoring import Scores
from assay.filters.stream import filter_stream, streams
from assay.records import exported_parts, messages_text

CFG = Filter.model_validate({"pii": {"entities": ["EMAIL_ADDRESS"], "policy": {"EMAIL_ADDRESS": "redact"}},
                             "domain": {"enabled": False}, "injection": {"enabled": False},
                             "dedup": {"semantic": {"enabled": False}}})
EMAIL = re.compile(r"\S+@\S+\.com")
WORDS = [f"w{i}" for i in range(2000)]


def _samples(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    answers: list[str] = []
    rows = []
    for i in range(n):
        roll = rng.random()
        if answers and roll < 0.3:  # a near or exact copy of an earlier answer
            words = rng.choice(answers).split()
            for _ in range(rng.randint(0, 2)):
                words[rng.randrange(len(words))] = rng.choice(WORDS)
            answer = " ".join(words)
        else:
            answer = " ".join(rng.choices(WORDS, k=rng.randint(40, 80)))
        if roll > 0.93:
            answer += " mail jo@example.com" if roll > 0.96 else " damn"
        answers.append(answer)
        rows.append({"id": f"s{i}", "task": rng.choice(["qa", "refusal"]), "seed_ids": [f"c{i % 7}"],
                     "evidence": ["e"], "evidence_ok": rng.random() > 0.05, "generation": "{}",
                     "error": "HTTP 500" if rng.random() < 0.03 else None, "raw": None, "critique": "{}",
                     "score": round(rng.random() * 5, 1), "verdict": "accept" if rng.random() > 0.1 else "reject",
                     "messages": [{"role": "user", "content": "q?"}, {"role": "assistant", "content": answer}]})
    return pd.DataFrame(rows)


def fake_scores(samples, chunks, cfg, cache, rewriter):
    """Deterministic scores: an e-mail address is PII, "damn" is toxic."""
    texts = [messages_text(exported_parts(m, e)) for m, e in zip(samples["messages"], samples["evidence"], strict=True)]
    pii = [[{"entity": "EMAIL_ADDRESS", "start": m.start(), "end": m.end(), "score": 1.0} for m in EMAIL.finditer(t)]
           for t in texts]
    return Scores(pii=pii, toxicity=[{"profanity": 0.9 if "damn" in t else 0.1} for t in texts],
                  toxicity_backend="fake")


def _plain(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values (Parquet gives arrays where the frame held lists)."""
    def plain(v):
        if isinstance(v, np.ndarray | list):
            return [plain(x) for x in v]
        return {k: plain(x) for k, x in v.items()} if isinstance(v, dict) else v
    return [{k: plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def test_streaming_keeps_the_same_rows_reasons_and_metrics_as_the_whole_frame(tmp_path):
    samples = _samples(600, 1)
    path = tmp_path / "samples.parquet"
    samples.to_parquet(path, index=False)
    chunks = pd.DataFrame({"chunk_id": ["c0"], "text": ["x"]})
    cache = ScoreCache(tmp_path / "cache")
    nothing_left = lambda texts: [[] for _ in texts]  # noqa: E731  redacted text re-checks clean
    whole = decide(samples, fake_scores(samples, chunks, CFG, cache, None), CFG, nothing_left)
    expected = metrics(whole, "fake", cache)
    got = filter_stream(path, chunks, CFG, cache, {"recheck": nothing_left}, tmp_path / "a.parquet",
                        tmp_path / "r.parquet", batch_rows=37, score_fn=fake_scores)
    kept = whole["reasons"].map(len) == 0
    assert _plain(pd.read_parquet(tmp_path / "a.parquet")) == _plain(whole[kept])
    assert _plain(pd.read_parquet(tmp_path / "r.parquet")) == _plain(whole[~kept])
    assert got == expected
    assert expected["reason.duplicate"] > 50 and expected["pii.redacted_rows"] > 5
    assert {"reason.toxic", "reason.critique_reject", "reason.generation_error"} <= set(expected)
    redacted = [json.loads(f)["redacted"] for f in pd.read_parquet(tmp_path / "a.parquet")["filter"]]
    assert ["EMAIL_ADDRESS"] in redacted
    assert not list(tmp_path.glob(".*"))  # the work and temporary files are gone


def test_empty_input_writes_empty_outputs(tmp_path):
    path = tmp_path / "samples.parquet"
    _samples(3, 2).iloc[:0].to_parquet(path, index=False)
    got = filter_stream(path, pd.DataFrame({"chunk_id": [], "text": []}), CFG, ScoreCache(tmp_path / "c"),
                        {"recheck": None}, tmp_path / "a.parquet", tmp_path / "r.parquet", score_fn=fake_scores)
    assert got["input"] == 0 and len(pd.read_parquet(tmp_path / "a.parquet")) == 0


def test_semantic_dedup_and_rewriting_keep_the_whole_frame_path():
    assert streams(CFG)
    on = CFG.model_dump()
    on["dedup"]["semantic"]["enabled"] = True
    assert not streams(Filter.model_validate(on))

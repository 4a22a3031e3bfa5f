"""Diversity metrics (distinct-n, self-BLEU) and the shipped params' generation mix."""

from assay.config import load_params
from assay.diversity import distinct_n, self_bleu, tokens


def test_tokens_casefold_and_drop_punctuation():
    assert tokens("Don't RESET, it's E04!") == ["don't", "reset", "it's", "e04"]


def test_distinct_n():
    assert distinct_n([], 1) == 0.0
    assert distinct_n(["a b c", "d e f"], 1) == 1.0
    assert distinct_n(["a b", "a b"], 2) == 0.5
    assert distinct_n(["a", "b"], 2) == 0.0  # no bigrams at all


def test_self_bleu_orders_similarity():
    same = ["how long is the warranty on the thermostat"] * 3
    varied = ["how long is the warranty", "what does error e04 mean", "can i return an opened box"]
    near = ["how long is the warranty on the h2", "how long is the warranty on the thermostat",
            "how long is the warranty for the h2"]
    assert self_bleu(same) == 1.0
    assert self_bleu(varied) < self_bleu(near) < 1.0
    assert self_bleu(["only one"]) == 0.0 and self_bleu(["", "  "]) == 0.0


def test_self_bleu_samples_large_sets_reproducibly():
    texts = [f"question number {i} about topic {i % 7}" for i in range(300)]
    assert self_bleu(texts, sample=50, seed=1) == self_bleu(texts, sample=50, seed=1)


def test_shipped_params_enable_all_four_kinds():
    cfg = load_params("params.yaml").generate
    assert list(cfg.kinds.active()) == ["qa", "multi_turn", "task_demo", "refusal"]
    assert len(cfg.personas) >= 5 and cfg.max_chunks * cfg.samples_per_chunk <= 32

"""Unit tests for assay.filters.dedup: exact and near duplicates, representatives, edge cases."""

import itertools
import random

import pytest

from assay.filters.dedup import find_duplicates, jaccard, normalise, shingles

WORDS = [f"w{i}" for i in range(1500)]


def _random_text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def _replace_word(text: str, index: int) -> str:
    words = text.split()
    words[index] = "changed"
    return " ".join(words)


def _change_words(rng: random.Random, text: str, n: int) -> str:
    words = text.split()
    for _ in range(n):
        words[rng.randrange(len(words))] = rng.choice(WORDS)
    return " ".join(words)


def test_exact_duplicates_ignore_case_whitespace_and_punctuation():
    texts = ["Reset the router.", "reset  the\tROUTER", "Reset, the router!", "Replace the cable."]
    assert find_duplicates(texts) == [None, 0, 0, None]


def test_one_changed_word_in_a_40_word_text_is_a_near_duplicate():
    # 40 words -> 38 trigrams; a changed middle word alters 3: Jaccard 35/41 = 0.85.
    text = _random_text(random.Random(1), 40)
    assert find_duplicates([text, _replace_word(text, 20)], ngram=3) == [None, 0]


def test_default_5_grams_need_about_45_words_per_changed_word():
    # A changed middle word alters 5 shingles: 40 words -> 31/41 = 0.76 (kept), 80 -> 71/81 = 0.88.
    rng = random.Random(2)
    short, long = _random_text(rng, 40), _random_text(rng, 80)
    texts = [short, _replace_word(short, 20), long, _replace_word(long, 40)]
    assert find_duplicates(texts) == [None, None, None, 2]


def test_distinct_texts_are_all_kept():
    rng = random.Random(3)
    texts = [_random_text(rng, 30) for _ in range(20)]
    assert find_duplicates(texts) == [None] * 20


def test_highest_quality_is_kept_and_others_point_to_it():
    texts = ["Same answer here.", "same answer here", "Other text entirely.", "SAME ANSWER HERE"]
    assert find_duplicates(texts, [0.2, 0.9, 0.5, 0.9]) == [1, None, None, 1]


def test_quality_ties_keep_the_lowest_index():
    assert find_duplicates(["a b", "A B", "a  b"], [0.5, 0.5, 0.5]) == [None, 0, 0]


def test_quality_length_must_match():
    with pytest.raises(ValueError, match="2 values for 3 texts"):
        find_duplicates(["a", "b", "c"], [1.0, 2.0])


@pytest.mark.parametrize("name", ["threshold", "lsh_threshold"])
def test_thresholds_outside_unit_interval_are_rejected(name):
    with pytest.raises(ValueError, match=name):
        find_duplicates(["a"], **{name: 0.0})


def test_empty_list():
    assert find_duplicates([]) == []


def test_empty_blank_and_punctuation_only_texts_are_one_group():
    assert find_duplicates(["", "   ", "real text", "?!", "\n"]) == [None, 0, None, 0, 0]


def test_short_texts_match_only_when_equal_after_normalising():
    assert find_duplicates(["Hi there", "hi there!", "Hi where", "ok"]) == [None, 0, None, None]


def test_unicode_is_casefolded_and_kept_distinct_where_it_differs():
    decomposed = "Straße über Cafe\u0301"  # NFKC composes it to "Café"
    texts = [
        "Straße über Café",
        "STRASSE ÜBER CAFÉ",
        "Straße über Cafe",
        "東京 の 天気",
        decomposed,
    ]
    assert find_duplicates(texts) == [None, 0, None, None, 0]


def test_normalise_and_shingles():
    assert normalise("  Hello,\tWORLD!! ") == "hello world"
    assert shingles("a b c", 5) == {"a b c"}
    assert shingles("a b c d", 3) == {"a b c", "b c d"}
    assert jaccard(set(), set()) == 1.0


def _components(n: int, pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """All pairs in the same connected component of the graph given by `pairs`."""
    label = list(range(n))
    for i, j in pairs:
        old, new = label[j], label[i]
        label = [new if x == old else x for x in label]
    return {(i, j) for i, j in itertools.combinations(range(n), 2) if label[i] == label[j]}


def test_recall_and_precision_against_brute_force_jaccard():
    # 150 distinct texts plus 150 copies with 1-4 words changed: Jaccard spreads around 0.8,
    # where LSH is least sure. Recall: brute-force pairs >= 0.8 that end up grouped.
    # Precision: grouped pairs that brute force connects too (groups are transitive).
    rng = random.Random(0)
    texts = [_random_text(rng, rng.randint(40, 100)) for _ in range(150)]
    texts += [_change_words(rng, rng.choice(texts), rng.randint(1, 4)) for _ in range(150)]
    sets = [shingles(normalise(t), 5) for t in texts]
    pairs = [
        (i, j)
        for i, j in itertools.combinations(range(len(texts)), 2)
        if jaccard(sets[i], sets[j]) >= 0.8
    ]
    keep = [i if rep is None else rep for i, rep in enumerate(find_duplicates(texts))]
    grouped = {
        (i, j) for i, j in itertools.combinations(range(len(texts)), 2) if keep[i] == keep[j]
    }
    recall = len(grouped & set(pairs)) / len(pairs)
    precision = len(grouped & _components(len(texts), pairs)) / len(grouped)
    assert len(pairs) > 30
    assert recall >= 0.9
    assert precision >= 0.95


def test_signatures_are_bit_identical_to_datasketch_bulk():
    import numpy as np
    from datasketch import MinHash

    from assay.filters.dedup import fold32, shingle_hashes, signatures

    rng = random.Random(4)
    texts = [normalise(_random_text(rng, rng.randint(1, 60))) for _ in range(50)] + [""]
    hashed = shingle_hashes(texts, 5)
    expected = np.vstack([m.hashvalues for m in MinHash.bulk(
        [fold32(h).tolist() for h in hashed], num_perm=64, seed=3, hashfunc=int)])
    assert (signatures(hashed, num_perm=64, seed=3, block=100) == expected).all()


def test_shingle_hashes_give_the_same_jaccard_as_strings():
    from assay.filters.dedup import jaccard_hashes, shingle_hashes

    rng = random.Random(5)
    a = normalise(_random_text(rng, 60))
    b = _change_words(rng, a, 3)
    short = ["hi there", "hi there", "hi where"]
    ha, hb, *hs = shingle_hashes([a, b, *short], 5)
    assert jaccard_hashes(ha, hb) == jaccard(shingles(a, 5), shingles(b, 5))
    assert jaccard_hashes(hs[0], hs[1]) == 1.0 and jaccard_hashes(hs[0], hs[2]) == 0.0


def test_match_reference_finds_exact_and_near_repeats_of_an_old_version():
    from assay.filters.reference import match_reference

    rng = random.Random(6)
    old = [_random_text(rng, 80) for _ in range(5)]
    new = [old[2].upper() + "!", _replace_word(old[4], 40), _random_text(rng, 80)]
    found = match_reference(new, old)
    assert found[0] == (2, 1.0) and found[1][0] == 4 and 0.8 <= found[1][1] < 1 and found[2] is None
    assert match_reference(new, []) == [None, None, None]


def test_contamination_is_the_share_of_an_eval_item_inside_a_sample():
    from assay.filters.reference import contamination

    evals = ["how do I reset the thermostat to factory settings", "", "what is the warranty period"]
    texts = ["Q: How do I reset the thermostat to factory settings? A: hold the dial.",
             "The warranty period is two years.", "unrelated"]
    found = contamination(texts, evals, ngram=3)
    assert found[0] == (0, 1.0)
    assert found[1] == (2, pytest.approx(1 / 3))  # only "the warranty period" of its 3 trigrams
    assert found[2] == (-1, 0.0)

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

"""Text metrics against hand-computed values and a brute-force edit distance."""

from __future__ import annotations

import math
import random

import pytest

from ctcocr.metrics.text import (
    TextMetrics,
    alnum_lower,
    char_error_rate,
    normalized_edit_distance,
    word_accuracy,
)

PREDS = ["abc", "Hello", "", "xyz", "ab", ""]
LABELS = ["abd", "hello", "", "xyz", "abc", "abc"]
# Distances by hand: 1 substitution, 1 substitution, 0, 0, 1 insertion, 3 insertions.
HAND_DISTANCES = [1, 1, 0, 0, 1, 3]


def reference_distance(a: str, b: str) -> int:
    """Textbook dynamic-programming Levenshtein distance, independent of rapidfuzz."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def random_pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    alphabet = "abcAB1"

    def word() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 7)))

    return [word() for _ in range(n)], [word() for _ in range(n)]


def test_hand_distances_match_reference() -> None:
    assert [reference_distance(p, t) for p, t in zip(PREDS, LABELS)] == HAND_DISTANCES
    assert reference_distance("kitten", "sitting") == 3


def test_word_accuracy_exact_and_case_insensitive() -> None:
    # Exact matches: "" == "" and "xyz"; "Hello" matches only without case.
    assert word_accuracy(PREDS, LABELS) == pytest.approx(2 / 6)
    assert word_accuracy(PREDS, LABELS, case_sensitive=False) == pytest.approx(3 / 6)


def test_char_error_rate_by_hand() -> None:
    label_chars = 3 + 5 + 0 + 3 + 3 + 3
    assert char_error_rate(PREDS, LABELS) == pytest.approx(sum(HAND_DISTANCES) / label_chars)
    assert char_error_rate(["abc"], ["abd"]) == pytest.approx(1 / 3)
    assert char_error_rate(["abcdef"], ["ab"]) == pytest.approx(4 / 2)  # CER is not capped at 1


def test_normalized_edit_distance_by_hand() -> None:
    per_sample = [1 / 3, 1 / 5, 0.0, 0.0, 1 / 3, 3 / 3]
    assert normalized_edit_distance(PREDS, LABELS) == pytest.approx(sum(per_sample) / 6)
    assert normalized_edit_distance([""], [""]) == 0.0
    assert normalized_edit_distance(["abcdef"], ["ab"]) == pytest.approx(4 / 6)


def test_random_pairs_against_brute_force() -> None:
    preds, labels = random_pairs(200, seed=0)
    distances = [reference_distance(p, t) for p, t in zip(preds, labels)]
    expected_cer = sum(distances) / max(sum(map(len, labels)), 1)
    ratios = [d / max(len(p), len(t), 1) for d, p, t in zip(distances, preds, labels)]
    expected_ned = sum(ratios) / len(ratios)
    assert char_error_rate(preds, labels) == pytest.approx(expected_cer, rel=1e-12)
    assert normalized_edit_distance(preds, labels) == pytest.approx(expected_ned, rel=1e-12)


def test_accumulator_over_batches_equals_one_shot() -> None:
    preds, labels = random_pairs(97, seed=1)
    metric = TextMetrics()
    for start in range(0, 97, 10):
        metric.update(preds[start : start + 10], labels[start : start + 10])
    result = metric.compute()
    assert set(result) == {"acc", "acc_ci", "cer", "ned"}
    assert result["acc"] == pytest.approx(word_accuracy(preds, labels), rel=1e-12)
    assert result["acc_ci"] == pytest.approx(word_accuracy(preds, labels, False), rel=1e-12)
    assert result["cer"] == pytest.approx(char_error_rate(preds, labels), rel=1e-12)
    assert result["ned"] == pytest.approx(normalized_edit_distance(preds, labels), rel=1e-12)


def test_states_merged_as_across_ranks_equal_one_shot() -> None:
    """``merge_state`` applies the same sum reduction that DDP synchronisation uses."""
    preds, labels = random_pairs(40, seed=2)
    rank0, rank1, whole = TextMetrics(), TextMetrics(), TextMetrics()
    rank0.update(preds[:25], labels[:25])
    rank1.update(preds[25:], labels[25:])
    whole.update(preds, labels)
    rank0.merge_state(rank1)
    assert rank0.compute() == pytest.approx(whole.compute(), rel=1e-12)


def test_accumulator_reset_and_empty_state() -> None:
    metric = TextMetrics()
    metric.update(["abc"], ["abd"])
    metric.reset()
    metric.update(PREDS, LABELS)
    assert metric.compute()["acc"] == pytest.approx(2 / 6)
    metric.reset()
    with pytest.warns(UserWarning):  # torchmetrics warns when compute comes before any update
        empty = metric.compute()
    assert all(math.isnan(value) for value in empty.values())


def test_alnum_lower_normalizer() -> None:
    assert alnum_lower("Hello, World-42!") == "helloworld42"
    assert alnum_lower("Café") == "caf"
    metric = TextMetrics(normalize="alnum_lower")
    metric.update(["HELLO!", "a-b", "x"], ["hello", "AB", "y"])
    result = metric.compute()
    assert result["acc"] == pytest.approx(2 / 3)
    assert result["cer"] == pytest.approx(1 / (5 + 2 + 1))


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(ValueError, match="2 predictions for 1 labels"):
        word_accuracy(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="label of sample 1"):
        char_error_rate(["a", "b"], ["a", None])
    with pytest.raises(ValueError, match="no samples"):
        normalized_edit_distance([], [])
    with pytest.raises(ValueError, match="unknown text normaliser"):
        TextMetrics(normalize="nope")

"""viterbi_align against brute-force enumeration of all frame labellings on tiny cases (float64)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from ctcocr.ctc.align import viterbi_align

BLANK = 0


def collapse(path: tuple[int, ...]) -> list[int]:
    """CTC's many-to-one map: merge repeats, then drop blanks."""
    merged = [label for i, label in enumerate(path) if i == 0 or label != path[i - 1]]
    return [label for label in merged if label != BLANK]


def brute_force_best(log_probs: torch.Tensor, target: list[int]) -> float:
    """Highest log-probability among the labellings of the T frames that collapse to ``target``."""
    num_frames, num_classes = log_probs.shape
    best = -math.inf
    for path in itertools.product(range(num_classes), repeat=num_frames):
        if collapse(path) == target:
            best = max(best, sum(float(log_probs[t, c]) for t, c in enumerate(path)))
    return best


def spans_of(path: list[int]) -> list[tuple[int, int]]:
    """Inclusive frame spans of the tokens of a frame labelling (runs of one non-blank label)."""
    spans: list[tuple[int, int]] = []
    for t, label in enumerate(path):
        if label == BLANK:
            continue
        if t > 0 and path[t - 1] == label:
            spans[-1] = (spans[-1][0], t)
        else:
            spans.append((t, t))
    return spans


def random_case(
    seed: int, num_frames: int, num_classes: int, targets: list[list[int]], input_lengths: list[int]
):
    generator = torch.Generator().manual_seed(seed)
    shape = (num_frames, len(targets), num_classes)
    log_probs = torch.randn(shape, generator=generator, dtype=torch.float64)
    log_probs = (3 * log_probs).log_softmax(-1)
    max_len = max(1, max(len(t) for t in targets))
    padded = torch.tensor([t + [0] * (max_len - len(t)) for t in targets])
    return log_probs, padded, torch.tensor(input_lengths), torch.tensor([len(t) for t in targets])


CASES = [
    # (seed, T, C, targets, input lengths): repeats, empty target, infeasible, short inputs
    (0, 6, 3, [[1, 2], [1, 1], [2, 1, 2], []], [6, 5, 6, 4]),
    (1, 5, 3, [[1, 1, 1], [2, 2], [1], [2, 1]], [5, 4, 1, 3]),
    (2, 6, 4, [[3, 1, 3], [1, 2, 3, 2], [2, 2, 2], [3]], [6, 6, 4, 2]),
]


@pytest.mark.parametrize("case", CASES)
def test_best_path_matches_brute_force(case):
    log_probs, targets, input_lengths, target_lengths = random_case(*case)
    result = viterbi_align(log_probs, targets, input_lengths, target_lengths, blank=BLANK)
    for b, target in enumerate(case[3]):
        length = int(input_lengths[b])
        expected = brute_force_best(log_probs[:length, b], target)
        path = result.labels[:length, b].tolist()
        assert (result.labels[length:, b] == -1).all()
        if expected == -math.inf:  # no alignment fits the frames
            assert result.log_prob[b] == -math.inf
            assert (result.labels[:, b] == -1).all() and (result.token_spans[b] == -1).all()
            continue
        assert result.log_prob[b].item() == pytest.approx(expected, abs=1e-12)
        assert collapse(tuple(path)) == target
        path_log_prob = sum(float(log_probs[t, b, c]) for t, c in enumerate(path))
        assert path_log_prob == pytest.approx(expected, abs=1e-12)
        spans = result.token_spans[b, : len(target)].tolist()
        assert [tuple(span) for span in spans] == spans_of(path)
        assert (result.token_spans[b, len(target) :] == -1).all()


def test_concatenated_targets_and_list_lengths_give_the_same_alignment():
    log_probs, targets, input_lengths, target_lengths = random_case(*CASES[2])
    concatenated = torch.cat([targets[b, : int(n)] for b, n in enumerate(target_lengths)])
    padded = viterbi_align(log_probs, targets, input_lengths, target_lengths)
    flat = viterbi_align(log_probs, concatenated, input_lengths.tolist(), target_lengths.tolist())
    for field_padded, field_flat in zip(padded, flat, strict=True):
        torch.testing.assert_close(field_padded, field_flat)


def test_all_empty_targets_align_to_blanks():
    log_probs = torch.randn(4, 2, 3, dtype=torch.float64).log_softmax(-1)
    result = viterbi_align(log_probs, torch.zeros(2, 0, dtype=torch.long), [4, 2], [0, 0])
    assert result.labels[:, 0].tolist() == [BLANK] * 4
    assert result.labels[:, 1].tolist() == [BLANK, BLANK, -1, -1]
    expected = torch.stack([log_probs[:4, 0, BLANK].sum(), log_probs[:2, 1, BLANK].sum()])
    torch.testing.assert_close(result.log_prob, expected)
    assert result.token_spans.shape == (2, 0, 2)


def test_input_lengths_beyond_the_frames_are_rejected():
    log_probs = torch.randn(4, 1, 3).log_softmax(-1)
    with pytest.raises(ValueError, match="input_lengths"):
        viterbi_align(log_probs, torch.tensor([[1]]), [5], [1])

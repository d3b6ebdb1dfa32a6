"""greedy_decode on hand-made frame sequences."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from ctcocr.ctc.decode import greedy_decode, pad_tokens

BLANK = 0


def peaked(frame_labels: list[list[int]], num_classes: int = 4, peak: float = 0.7) -> torch.Tensor:
    """(T, B, C) float64 log-probs whose argmax at frame t of sample b is frame_labels[b][t], with
    probability ``peak - 0.01 * t`` on it and the rest spread evenly."""
    num_frames = len(frame_labels[0])
    probs = torch.empty(num_frames, len(frame_labels), num_classes, dtype=torch.float64)
    for b, labels in enumerate(frame_labels):
        for t, label in enumerate(labels):
            top = peak - 0.01 * t
            probs[t, b] = (1 - top) / (num_classes - 1)
            probs[t, b, label] = top
    return probs.log()


def test_collapses_repeats_and_drops_blanks_within_each_length():
    log_probs = peaked([[1, 1, 0, 1, 2, 2, 0, 3], [0, 2, 0, 2, 2, 3, 3, 1]])
    result = greedy_decode(log_probs, torch.tensor([8, 6]))
    assert result.tokens == [[1, 1, 2, 3], [2, 2, 3]]  # sample 1 ignores its frames 6 and 7
    assert [f.tolist() for f in result.frames] == [[0, 3, 4, 7], [1, 3, 5]]
    for b, frames in enumerate(result.frames):
        torch.testing.assert_close(result.frame_scores[b], log_probs[frames, b].max(-1).values)


def test_confidences_follow_their_definitions():
    labels = [[1, 1, 0, 2, 0], [3, 0, 3, 3, 3]]
    log_probs = peaked(labels)
    result = greedy_decode(log_probs, [5, 4])
    top = [[0.7 - 0.01 * t for t in range(5)]] * 2
    expected_path = [math.prod(top[0]), math.prod(top[1][:4])]
    expected_mean = [(top[0][0] + top[0][3]) / 2, (top[1][0] + top[1][2]) / 2]
    as_tensor = partial(torch.tensor, dtype=torch.float64)
    torch.testing.assert_close(result.path_confidence, as_tensor(expected_path))
    torch.testing.assert_close(result.mean_kept_confidence, as_tensor(expected_mean))


def test_empty_string_uses_the_mean_blank_confidence():
    log_probs = peaked([[0, 0, 0, 0], [2, 0, 0, 0]])
    result = greedy_decode(log_probs, [3, 1])
    assert result.tokens == [[], [2]]
    assert result.frames[0].numel() == 0 and result.frame_scores[0].numel() == 0
    assert result.mean_kept_confidence[0].item() == pytest.approx((0.7 + 0.69 + 0.68) / 3)
    assert result.path_confidence[0].item() == pytest.approx(0.7 * 0.69 * 0.68)


def test_pad_tokens_give_the_ctc_sequence_confidence():
    log_probs = peaked([[1, 0, 2, 2], [0, 0, 0, 0]])
    result = greedy_decode(log_probs, [4, 4])
    targets, lengths = pad_tokens(result.tokens)
    assert targets.tolist() == [[1, 2], [0, 0]] and lengths.tolist() == [2, 0]
    input_lengths = torch.tensor([4, 4])
    nll = torch.nn.functional.ctc_loss(log_probs, targets, input_lengths, lengths, reduction="none")
    # the sequence probability sums over alignments, so it is at least the greedy path's
    assert (torch.exp(-nll) >= result.path_confidence).all()


def test_bf16_input_and_bad_lengths():
    log_probs = peaked([[1, 0, 2]]).to(torch.bfloat16)
    result = greedy_decode(log_probs, [3])
    assert result.tokens == [[1, 2]] and result.path_confidence.dtype == torch.float32
    with pytest.raises(ValueError, match=r"samples \[0\]"):
        greedy_decode(log_probs, [0])

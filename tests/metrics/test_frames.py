"""Frame-level alignment statistics on a hand-made batch with padding."""

from __future__ import annotations

import math

import pytest
import torch

from ctcocr.metrics.frames import FrameStatistics, frame_statistics

# (T=3, B=2, C=3) probabilities, blank = 0. Sample 1 has length 2: its last frame is padding, made
# confidently non-blank so that counting it would change every statistic.
PROBS = [
    [[0.7, 0.2, 0.1], [0.2, 0.3, 0.5]],
    [[0.1, 0.8, 0.1], [1.0, 0.0, 0.0]],
    [[0.5, 0.25, 0.25], [0.0, 0.0, 1.0]],
]
LENGTHS = [3, 2]


def entropy(probs: list[float]) -> float:
    return -sum(p * math.log(p) for p in probs if p > 0)


def hand_log_probs() -> torch.Tensor:
    return torch.tensor(PROBS, dtype=torch.float64).log()


def test_frame_statistics_by_hand() -> None:
    stats = frame_statistics(hand_log_probs(), LENGTHS)
    # Valid frames: (0,0) blank, (1,0) non-blank, (2,0) blank, (0,1) non-blank, (1,1) blank.
    assert stats["blank_ratio"] == pytest.approx(3 / 5)
    expected_blank_entropy = (entropy([0.7, 0.2, 0.1]) + entropy([0.5, 0.25, 0.25]) + 0.0) / 3
    expected_nonblank_entropy = (entropy([0.1, 0.8, 0.1]) + entropy([0.2, 0.3, 0.5])) / 2
    assert stats["entropy_blank"] == pytest.approx(expected_blank_entropy, rel=1e-6)
    assert stats["entropy_nonblank"] == pytest.approx(expected_nonblank_entropy, rel=1e-6)
    assert stats["peakiness"] == pytest.approx((0.7 + 0.8 + 0.5 + 0.5 + 1.0) / 5)
    assert stats["mean_blank_posterior"] == pytest.approx((0.7 + 0.1 + 0.5 + 0.2 + 1.0) / 5)


def test_other_blank_index() -> None:
    stats = frame_statistics(hand_log_probs(), torch.tensor(LENGTHS), blank=2)
    # Only frame (0,1) has class 2 as its argmax.
    assert stats["blank_ratio"] == pytest.approx(1 / 5)
    assert stats["mean_blank_posterior"] == pytest.approx((0.1 + 0.1 + 0.25 + 0.5 + 0.0) / 5)


def test_accumulator_over_batches_equals_one_shot() -> None:
    generator = torch.Generator().manual_seed(0)
    log_probs = (3 * torch.randn(7, 10, 5, generator=generator)).log_softmax(-1)
    lengths = torch.randint(0, 8, (10,), generator=generator)
    metric = FrameStatistics()
    for part in range(0, 10, 4):
        metric.update(log_probs[:, part : part + 4], lengths[part : part + 4])
    expected = frame_statistics(log_probs, lengths)
    assert metric.compute() == pytest.approx(expected, rel=1e-6)

    rank0, rank1 = FrameStatistics(), FrameStatistics()
    rank0.update(log_probs[:, :3], lengths[:3])
    rank1.update(log_probs[:, 3:], lengths[3:])
    rank0.merge_state(rank1)  # the sum reduction used across DDP processes
    assert rank0.compute() == pytest.approx(expected, rel=1e-6)


def test_no_nonblank_frame_gives_nan_entropy() -> None:
    log_probs = torch.tensor([[[0.9, 0.1]], [[0.6, 0.4]]]).log()
    stats = frame_statistics(log_probs, [2])
    assert stats["blank_ratio"] == 1.0
    assert math.isnan(stats["entropy_nonblank"])


def test_bad_inputs_are_named() -> None:
    log_probs = hand_log_probs()
    with pytest.raises(ValueError, match="input length 4 of sample 1"):
        frame_statistics(log_probs, [3, 4])
    with pytest.raises(ValueError, match="not normalised"):
        frame_statistics(torch.randn(3, 2, 3) + 5.0, LENGTHS)
    with pytest.raises(ValueError, match=r"\(T, B, C\)"):
        frame_statistics(log_probs[0], LENGTHS)
    with pytest.raises(ValueError, match="expected 2 lengths"):
        frame_statistics(log_probs, [3])


def test_cuda_accumulator_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    generator = torch.Generator().manual_seed(1)
    log_probs = (3 * torch.randn(9, 6, 5, generator=generator)).log_softmax(-1)
    lengths = torch.tensor([9, 1, 0, 4, 9, 7])
    metric = FrameStatistics().to("cuda")
    metric.update(log_probs.cuda(), lengths.cuda())
    assert metric.compute() == pytest.approx(frame_statistics(log_probs, lengths), rel=1e-5)

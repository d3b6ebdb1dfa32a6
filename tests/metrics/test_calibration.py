"""Calibration metrics against hand-computed values and brute-force references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ctcocr.metrics.calibration import (
    apply_temperature,
    brier_score,
    error_detection_auroc,
    expected_calibration_error,
    fit_temperature,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from ctcocr.metrics.plots import reliability_diagram

# Five bins of width 0.2; no confidence lies on a bin edge.
HAND_CONF = [0.1, 0.15, 0.75, 0.8 - 1e-9, 0.95]
HAND_CORRECT = [0, 1, 1, 0, 1]


def brute_force_ece_mce(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> tuple[float, float]:
    """Per-bin loops over bins ((k-1)/n, k/n], the first also holding 0."""
    ece, mce = 0.0, 0.0
    for k in range(n_bins):
        low, high = k / n_bins, (k + 1) / n_bins
        members = [i for i, c in enumerate(conf) if (low < c <= high) or (k == 0 and c == 0)]
        if not members:
            continue
        gap = abs(np.mean(correct[members]) - np.mean(conf[members]))
        ece += len(members) / len(conf) * gap
        mce = max(mce, gap)
    return ece, mce


def brute_force_auroc(conf: np.ndarray, correct: np.ndarray) -> float:
    """Count over all (right, wrong) pairs: 1 if the right one is more confident, 0.5 on ties."""
    right, wrong = conf[correct == 1], conf[correct == 0]
    wins = sum((r > w) + 0.5 * (r == w) for r in right for w in wrong)
    return wins / (len(right) * len(wrong))


def test_perfectly_calibrated_set_has_zero_ece_and_mce() -> None:
    conf = [0.3] * 10 + [0.9] * 10
    correct = [1] * 3 + [0] * 7 + [1] * 9 + [0]
    assert expected_calibration_error(conf, correct) == pytest.approx(0.0, abs=1e-12)
    assert maximum_calibration_error(conf, correct) == pytest.approx(0.0, abs=1e-12)


def test_ece_and_mce_by_hand() -> None:
    # Bin (0, .2]: conf .1, .15, one right -> gap |.5 - .125|; bin (.6, .8]: .75, .8, one right ->
    # gap |.5 - .775|; bin (.8, 1]: .95, right -> gap .05.
    gaps = [abs(0.5 - 0.125), abs(0.5 - (0.75 + 0.8) / 2), abs(1 - 0.95)]
    expected_ece = 2 / 5 * gaps[0] + 2 / 5 * gaps[1] + 1 / 5 * gaps[2]
    ece = expected_calibration_error(HAND_CONF, HAND_CORRECT, n_bins=5)
    assert ece == pytest.approx(expected_ece, abs=1e-8)
    assert maximum_calibration_error(HAND_CONF, HAND_CORRECT, n_bins=5) == pytest.approx(0.375)


def test_reliability_bins_by_hand() -> None:
    bins = reliability_bins(HAND_CONF, HAND_CORRECT, n_bins=5)
    assert bins.count.tolist() == [2, 0, 0, 2, 1]
    assert bins.accuracy[[0, 3, 4]].tolist() == pytest.approx([0.5, 0.5, 1.0])
    assert bins.confidence[[0, 3, 4]].tolist() == pytest.approx([0.125, 0.775, 0.95], abs=1e-8)
    assert torch.isnan(bins.accuracy[1:3]).all() and torch.isnan(bins.confidence[1:3]).all()
    assert bins.edges.tolist() == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_ece_and_mce_against_brute_force_with_extremes() -> None:
    rng = np.random.default_rng(0)
    conf = np.concatenate([rng.random(300), [0.0, 1.0, 1.0]])
    correct = (rng.random(303) < conf**2).astype(np.int64)
    expected_ece, expected_mce = brute_force_ece_mce(conf, correct, 15)
    assert expected_calibration_error(conf, correct) == pytest.approx(expected_ece, rel=1e-10)
    assert maximum_calibration_error(conf, correct) == pytest.approx(expected_mce, rel=1e-10)
    assert int(reliability_bins(conf, correct).count.sum()) == 303


def test_brier_score_by_hand() -> None:
    assert brier_score([0.9, 0.2, 0.4], [1, 1, 0]) == pytest.approx((0.01 + 0.64 + 0.16) / 3)
    assert brier_score(torch.tensor([1.0, 0.0]), torch.tensor([True, False])) == 0.0


def test_auroc_equals_pairwise_count_with_ties() -> None:
    rng = np.random.default_rng(1)
    conf = np.round(rng.random(120), 1)  # rounding creates many ties
    correct = (rng.random(120) < conf).astype(np.int64)
    expected = brute_force_auroc(conf, correct)
    assert error_detection_auroc(conf, correct) == pytest.approx(expected, rel=1e-6)
    assert error_detection_auroc([0.9, 0.9, 0.5, 0.2, 0.5], [1, 0, 1, 0, 0]) == pytest.approx(4 / 6)


def test_auroc_with_one_class_is_nan_with_reason() -> None:
    with pytest.warns(UserWarning, match="all 3 predictions are right"):
        assert math.isnan(error_detection_auroc([0.2, 0.5, 0.9], [1, 1, 1]))


def test_negative_log_likelihood() -> None:
    assert negative_log_likelihood([-0.5, -1.5, 0.0]) == pytest.approx(2 / 3)
    assert negative_log_likelihood(np.array([-1.0, -math.inf])) == math.inf
    with pytest.raises(ValueError, match="sample 1 has 2.0"):
        negative_log_likelihood([-1.0, 2.0])


def test_bad_inputs_name_the_sample() -> None:
    with pytest.raises(ValueError, match="sample 2 has 1.5"):
        expected_calibration_error([0.1, 0.2, 1.5], [0, 1, 1])
    with pytest.raises(ValueError, match="sample 0 has 2.0"):
        brier_score([0.1], [2])
    with pytest.raises(ValueError, match="NaN at sample"):
        brier_score([0.1, float("nan")], [0, 1])
    with pytest.raises(ValueError, match="2 confidences for 1"):
        brier_score([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="1-D"):
        brier_score([[0.1]], [[1]])


def sample_ctc_targets(logits: torch.Tensor, generator: torch.Generator) -> list[list[int]]:
    """Draw one frame-level path per sample from softmax(logits) (T, B, C); collapse repeats and
    drop blanks (0), so the targets follow exactly the label distribution CTC assigns."""
    frames, batch, classes = logits.shape
    probs = logits.softmax(-1).reshape(frames * batch, classes)
    paths = torch.multinomial(probs, 1, generator=generator).reshape(frames, batch).T.tolist()
    targets = []
    for path in paths:
        collapsed = [k for i, k in enumerate(path) if k != 0 and (i == 0 or k != path[i - 1])]
        targets.append(collapsed)
    return targets


def padded(targets: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(t) for t in targets])
    out = torch.zeros(len(targets), max(int(lengths.max()), 1), dtype=torch.long)
    for row, target in enumerate(targets):
        out[row, : len(target)] = torch.tensor(target, dtype=torch.long)
    return out, lengths


@pytest.mark.parametrize("sharpening", [1.0, 2.0, 0.5])
def test_fit_temperature_recovers_known_temperature(sharpening: float) -> None:
    generator = torch.Generator().manual_seed(0)
    frames, batch, classes = 12, 300, 5
    logits = 1.5 * torch.randn(frames, batch, classes, generator=generator, dtype=torch.float64)
    targets, target_lengths = padded(sample_ctc_targets(logits, generator))
    input_lengths = torch.full((batch,), frames)
    presented = F.log_softmax(logits * sharpening, dim=-1)

    temperature = fit_temperature(presented, targets, input_lengths, target_lengths)
    assert temperature == pytest.approx(sharpening, rel=0.05)

    def nll(t: float) -> float:
        tempered = apply_temperature(presented, t)
        losses = F.ctc_loss(tempered, targets, input_lengths, target_lengths, reduction="none")
        return float(losses.mean())

    # The returned T is a minimum of the objective, not merely close to the truth.
    assert nll(temperature) <= min(nll(temperature * 1.01), nll(temperature / 1.01))


def test_fit_temperature_is_deterministic_and_uses_ctc_fn() -> None:
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(8, 50, 4, generator=generator, dtype=torch.float64)
    targets, target_lengths = padded(sample_ctc_targets(logits, generator))
    input_lengths = torch.full((50,), 8)
    calls = []

    def counting_ctc(*args: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return F.ctc_loss(*args, reduction="none")

    first = fit_temperature(logits, targets, input_lengths, target_lengths, ctc_fn=counting_ctc)
    assert calls
    assert fit_temperature(logits, targets, input_lengths, target_lengths) == first


def test_fit_temperature_warns_at_the_search_bound() -> None:
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(6, 40, 4, generator=generator, dtype=torch.float64)
    targets, target_lengths = padded(sample_ctc_targets(logits, generator))
    input_lengths = torch.full((40,), 6)
    with pytest.warns(UserWarning, match="at the edge of the search bounds"):
        fitted = fit_temperature(
            logits * 10, targets, input_lengths, target_lengths, bounds=(0.5, 2.0)
        )
    assert fitted == pytest.approx(2.0, rel=1e-2)


def test_fit_temperature_rejects_infeasible_samples() -> None:
    log_probs = torch.randn(3, 2, 4).log_softmax(-1)
    targets = torch.tensor([[1, 2, 3, 1], [1, 1, 0, 0]])
    with pytest.raises(ValueError, match=r"1 sample\(s\) have a non-finite CTC loss, e.g. \[0\]"):
        fit_temperature(log_probs, targets, torch.tensor([3, 3]), torch.tensor([4, 2]))


def test_apply_temperature_is_identity_at_one_and_shift_invariant() -> None:
    logits = torch.randn(4, 2, 6, dtype=torch.float64)
    log_probs = logits.log_softmax(-1)
    torch.testing.assert_close(apply_temperature(log_probs, 1.0), log_probs)
    torch.testing.assert_close(apply_temperature(logits, 2.5), apply_temperature(log_probs, 2.5))


def test_reliability_diagram_writes_a_png(tmp_path) -> None:
    rng = np.random.default_rng(2)
    conf = rng.random(200)
    correct = (rng.random(200) < conf).astype(np.int64)
    path = tmp_path / "reliability.png"
    figure = reliability_diagram(conf, correct, n_bins=10, title="toy", path=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ece = expected_calibration_error(conf, correct, n_bins=10)
    assert figure.axes[0].get_title() == f"toy (ECE {ece:.2%})"
    heights = [patch.get_height() for patch in figure.axes[1].patches]
    assert heights == reliability_bins(conf, correct, n_bins=10).count.tolist()


def test_fit_temperature_on_cuda_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(10, 64, 5, generator=generator, dtype=torch.float64)
    targets, target_lengths = padded(sample_ctc_targets(logits, generator))
    input_lengths = torch.full((64,), 10)
    on_cpu = fit_temperature(logits * 1.7, targets, input_lengths, target_lengths)
    on_cuda = fit_temperature(
        (logits * 1.7).cuda(), targets.cuda(), input_lengths.cuda(), target_lengths.cuda()
    )
    assert on_cuda == pytest.approx(on_cpu, rel=1e-2)

"""Calibration of per-sample confidences, and post-hoc temperature scaling for CTC outputs.

``conf`` holds one confidence in [0, 1] per sample and ``correct`` whether that sample's prediction
was right (exact string match), as 1-D tensors, numpy arrays or sequences of the same length N.
Results are Python floats computed in float64.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc

ArrayLike = Tensor | np.ndarray | Sequence[float]
CTCFn = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def _as_vector(values: ArrayLike, name: str) -> Tensor:
    """Any 1-D array-like -> float64 CPU tensor (N,), refusing NaN."""
    if not isinstance(values, Tensor):
        values = torch.from_numpy(np.asarray(values, dtype=np.float64))
    vector = values.detach().to("cpu", torch.float64)
    if vector.dim() != 1:
        shape = tuple(vector.shape)
        raise ValueError(f"{name} must be 1-D (one value per sample), got shape {shape}")
    nan = torch.isnan(vector).nonzero().flatten()
    if nan.numel():
        raise ValueError(f"{name} is NaN at sample(s) {nan[:10].tolist()}")
    return vector


def _first_bad(mask: Tensor) -> int:
    return int(mask.nonzero()[0])


def _checked(conf: ArrayLike, correct: ArrayLike) -> tuple[Tensor, Tensor]:
    """Validated (conf, correct) as float64 (N,) tensors; correct holds 0.0 and 1.0 only."""
    conf, correct = _as_vector(conf, "conf"), _as_vector(correct, "correct")
    if conf.numel() != correct.numel():
        raise ValueError(f"got {conf.numel()} confidences for {correct.numel()} correctness flags")
    if conf.numel() == 0:
        raise ValueError("no samples: calibration metrics are undefined for empty inputs")
    outside = (conf < 0) | (conf > 1)
    if outside.any():
        index = _first_bad(outside)
        raise ValueError(f"conf must lie in [0, 1]; sample {index} has {conf[index].item()}")
    not_binary = (correct != 0) & (correct != 1)
    if not_binary.any():
        index = _first_bad(not_binary)
        raise ValueError(f"correct must be 0 or 1; sample {index} has {correct[index].item()}")
    return conf, correct


@dataclass(frozen=True)
class ReliabilityBins:
    """Equal-width confidence bins ``(edges[k], edges[k+1]]`` (the first also holds 0).

    edges: (n_bins + 1,); count: (n_bins,) int64; accuracy and confidence: (n_bins,) float64, the
    mean correctness and mean confidence of each bin, NaN for empty bins.
    """

    edges: Tensor
    count: Tensor
    accuracy: Tensor
    confidence: Tensor

    @property
    def gap(self) -> Tensor:
        """|accuracy - confidence| per bin (n_bins,), NaN for empty bins."""
        return (self.accuracy - self.confidence).abs()


def reliability_bins(conf: ArrayLike, correct: ArrayLike, n_bins: int = 15) -> ReliabilityBins:
    """Sort samples into ``n_bins`` equal-width confidence bins and summarise each bin."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be positive, got {n_bins}")
    conf, correct = _checked(conf, correct)
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)
    index = torch.bucketize(conf, edges[1:-1], right=False)
    count = torch.bincount(index, minlength=n_bins)
    sums = torch.zeros(2, n_bins, dtype=torch.float64)
    sums[0].index_add_(0, index, correct)
    sums[1].index_add_(0, index, conf)
    accuracy, confidence = sums / count.clamp(min=1)
    empty = count == 0
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    return ReliabilityBins(
        edges=edges,
        count=count,
        accuracy=torch.where(empty, nan, accuracy),
        confidence=torch.where(empty, nan, confidence),
    )


def expected_calibration_error(conf: ArrayLike, correct: ArrayLike, n_bins: int = 15) -> float:
    """ECE: sum over bins of (bin count / N) * |bin accuracy - bin mean confidence|."""
    bins = reliability_bins(conf, correct, n_bins)
    weights = bins.count.double() / bins.count.sum()
    return float((weights * bins.gap).nansum())


def maximum_calibration_error(conf: ArrayLike, correct: ArrayLike, n_bins: int = 15) -> float:
    """MCE: the largest |bin accuracy - bin mean confidence| over non-empty bins."""
    gap = reliability_bins(conf, correct, n_bins).gap
    return float(gap[~torch.isnan(gap)].max())


def brier_score(conf: ArrayLike, correct: ArrayLike) -> float:
    """Mean squared difference between confidence and correctness, in [0, 1]."""
    conf, correct = _checked(conf, correct)
    return float(((conf - correct) ** 2).mean())


def error_detection_auroc(conf: ArrayLike, correct: ArrayLike) -> float:
    """AUROC of the confidence as a score separating right (positive) from wrong predictions.

    Equals P(conf of a right sample > conf of a wrong one) + 0.5 P(equal), i.e. the rank-averaged
    Mann-Whitney statistic. Undefined when all predictions are right or all wrong: returns NaN
    with a warning that says so.
    """
    conf, correct = _checked(conf, correct)
    n_right = int(correct.sum())
    if n_right in (0, conf.numel()):
        kind = "right" if n_right else "wrong"
        message = f"error-detection AUROC is undefined: all {conf.numel()} predictions are {kind}"
        warnings.warn(message, stacklevel=2)
        return float("nan")
    return float(binary_auroc(conf, correct.long(), thresholds=None))


def negative_log_likelihood(gt_log_probs: ArrayLike) -> float:
    """Mean of -log P(label | image) over samples.

    gt_log_probs: (N,) per-sample log-likelihood of the ground truth, e.g. the negated per-sample
    CTC loss. A sample the model cannot produce at all (-inf) makes the result +inf.
    """
    log_probs = _as_vector(gt_log_probs, "gt_log_probs")
    if log_probs.numel() == 0:
        raise ValueError("no samples: the NLL is undefined for empty inputs")
    positive = log_probs > 1e-4
    if positive.any():
        index = _first_bad(positive)
        raise ValueError(
            f"log-likelihoods must be <= 0; sample {index} has {log_probs[index].item()} "
            "(were losses passed instead of log-probabilities?)"
        )
    return float(-log_probs.mean())


def apply_temperature(log_probs: Tensor, temperature: float) -> Tensor:
    """log_softmax(log_probs / temperature) over the last (class) dimension, any shape (..., C).

    The result is the same for logits and for log-probabilities, since log_softmax ignores a
    per-frame constant.
    """
    return F.log_softmax(log_probs / temperature, dim=-1)


def _golden_section_minimum(
    objective: Callable[[float], float], low: float, high: float, tol: float
) -> float:
    """Argmin of a unimodal ``objective`` on [low, high], to within ``tol``."""
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    left, right = high - ratio * (high - low), low + ratio * (high - low)
    f_left, f_right = objective(left), objective(right)
    while high - low > tol:
        if f_left <= f_right:
            high, right, f_right = right, left, f_left
            left = high - ratio * (high - low)
            f_left = objective(left)
        else:
            low, left, f_left = left, right, f_right
            right = low + ratio * (high - low)
            f_right = objective(right)
    return (low + high) / 2.0


@torch.no_grad()
def fit_temperature(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = 0,
    ctc_fn: CTCFn | None = None,
    bounds: tuple[float, float] = (0.05, 20.0),
    grid_size: int = 25,
    tol: float = 1e-3,
) -> float:
    """Temperature T minimising the mean CTC NLL of the ground truth under log_softmax(x / T).

    log_probs: (T_frames, B, C) logits or log-probabilities of a validation set; batches of
    different lengths can be padded along time and concatenated along B (frames past
    ``input_lengths`` are ignored). targets, input_lengths, target_lengths: as for
    ``torch.nn.functional.ctc_loss``. ``ctc_fn(log_probs, targets, input_lengths, target_lengths)``
    must return per-sample losses (B,); the default is torch's ``ctc_loss`` with ``blank`` and
    ``reduction="none"``. The objective is the mean of those losses over samples.

    The search is deterministic: the NLL on a grid of ``grid_size`` points evenly spaced in log T
    over ``bounds``, then golden-section refinement around the best grid point to ``tol`` in log T.
    Computed in float64. Samples whose loss is not finite at T = 1 (infeasible targets) are an
    error; a result at the edge of ``bounds`` comes with a warning.
    """
    low, high = bounds
    if not 0 < low < high:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}")
    if grid_size < 3:
        raise ValueError(f"grid_size must be at least 3, got {grid_size}")
    if ctc_fn is None:
        ctc_fn = partial(F.ctc_loss, blank=blank, reduction="none", zero_infinity=False)
    scores = log_probs.detach().to(torch.float64)

    def sample_losses(log_temperature: float) -> Tensor:
        tempered = apply_temperature(scores, math.exp(log_temperature))
        return ctc_fn(tempered, targets, input_lengths, target_lengths)

    not_finite = ~torch.isfinite(sample_losses(0.0))
    if not_finite.any():
        samples = not_finite.nonzero().flatten()[:10].tolist()
        raise ValueError(
            f"{int(not_finite.sum())} sample(s) have a non-finite CTC loss, e.g. {samples}: "
            "targets too long for their input lengths? Remove them before fitting."
        )

    def mean_nll(log_temperature: float) -> float:
        return float(sample_losses(log_temperature).mean())

    grid = np.linspace(math.log(low), math.log(high), grid_size)
    best = int(np.argmin([mean_nll(point) for point in grid]))
    bracket = grid[max(best - 1, 0)], grid[min(best + 1, grid_size - 1)]
    log_temperature = _golden_section_minimum(mean_nll, *bracket, tol)
    if min(abs(log_temperature - grid[0]), abs(log_temperature - grid[-1])) <= tol:
        warnings.warn(
            f"fitted temperature {math.exp(log_temperature):.4g} is at the edge of the search "
            f"bounds {bounds}: widen them, or check the validation outputs",
            stacklevel=2,
        )
    return math.exp(log_temperature)

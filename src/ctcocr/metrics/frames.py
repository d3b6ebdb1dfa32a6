"""Alignment behaviour of CTC outputs: how often, and how confidently, frames choose the blank.

Only valid frames (t < input_length of their sample) count. A frame is a "blank frame" when its
argmax is the blank. Statistics:

- ``blank_ratio``: fraction of frames that are blank frames;
- ``entropy_blank`` / ``entropy_nonblank``: mean entropy (nats) of blank / non-blank frames
  (NaN when there are none);
- ``peakiness``: mean of the per-frame maximum probability;
- ``mean_blank_posterior``: mean probability of the blank over all frames.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from ctcocr.ctc.inputs import Lengths, as_lengths

SUM_NAMES = (
    "frames", "blank_frames", "entropy_blank", "entropy_nonblank", "max_prob", "blank_prob"
)
_NORMALISATION_TOLERANCE = 0.05  # in log space; loose enough for bf16, far too tight for logits


def frame_sums(log_probs: Tensor, input_lengths: Lengths, blank: int = 0) -> dict[str, Tensor]:
    """Sums over the valid frames of one batch: float64 scalar tensors keyed by :data:`SUM_NAMES`.

    log_probs: (T, B, C) log-probabilities (log_softmax output); input_lengths: (B,) in [0, T].
    """
    if log_probs.dim() != 3:
        raise ValueError(f"log_probs must be (T, B, C), got shape {tuple(log_probs.shape)}")
    frames, batch, classes = log_probs.shape
    if not 0 <= blank < classes:
        raise ValueError(f"blank index {blank} is outside the {classes} classes")
    lengths = as_lengths(input_lengths, batch, log_probs.device)
    out_of_range = (lengths < 0) | (lengths > frames)
    if out_of_range.any():
        sample = int(out_of_range.nonzero()[0])
        length = int(lengths[sample])
        raise ValueError(f"input length {length} of sample {sample} is outside [0, {frames}]")
    log_probs = log_probs.detach().float()
    valid = torch.arange(frames, device=log_probs.device)[:, None] < lengths[None, :]  # (T, B)
    log_probs = log_probs[valid]  # (N_valid, C)
    total = log_probs.logsumexp(-1)
    off = (total.abs() > _NORMALISATION_TOLERANCE).nonzero().flatten()
    if off.numel():
        raise ValueError(
            f"log_probs are not normalised: {off.numel()} valid frame(s) have log-sum-exp over "
            f"classes up to {float(total[off].abs().max()):.3g} away from 0 "
            "(pass log_softmax output, not logits)"
        )
    probs = log_probs.exp()
    entropy = torch.special.entr(probs).sum(-1)
    max_prob, argmax = probs.max(-1)
    is_blank = argmax == blank
    sums = {
        "frames": valid.sum(),
        "blank_frames": is_blank.sum(),
        "entropy_blank": entropy[is_blank].sum(),
        "entropy_nonblank": entropy[~is_blank].sum(),
        "max_prob": max_prob.sum(),
        "blank_prob": probs[:, blank].sum(),
    }
    return {name: value.to(torch.float64) for name, value in sums.items()}


def frame_means(sums: dict[str, Tensor]) -> dict[str, float]:
    """The statistics of the module docstring from accumulated :func:`frame_sums` (NaN if empty)."""
    frames, blank_frames = float(sums["frames"]), float(sums["blank_frames"])

    def mean(total: Tensor, count: float) -> float:
        return float(total) / count if count > 0 else float("nan")

    return {
        "blank_ratio": mean(sums["blank_frames"], frames),
        "entropy_blank": mean(sums["entropy_blank"], blank_frames),
        "entropy_nonblank": mean(sums["entropy_nonblank"], frames - blank_frames),
        "peakiness": mean(sums["max_prob"], frames),
        "mean_blank_posterior": mean(sums["blank_prob"], frames),
    }


def frame_statistics(log_probs: Tensor, input_lengths: Lengths, blank: int = 0) -> dict[str, float]:
    """Frame statistics of one batch; log_probs (T, B, C), input_lengths (B,)."""
    return frame_means(frame_sums(log_probs, input_lengths, blank))


class FrameStatistics(Metric):
    """Accumulates :func:`frame_sums` over batches (summed across processes under DDP);
    ``compute()`` returns :func:`frame_means`."""

    full_state_update = False
    higher_is_better = None
    is_differentiable = False

    def __init__(self, blank: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.blank = blank
        for name in SUM_NAMES:
            zero = torch.tensor(0.0, dtype=torch.float64)
            self.add_state(name, default=zero, dist_reduce_fx="sum")

    def update(self, log_probs: Tensor, input_lengths: Lengths) -> None:
        """Add one batch: log_probs (T, B, C), input_lengths (B,)."""
        for name, value in frame_sums(log_probs, input_lengths, self.blank).items():
            setattr(self, name, getattr(self, name) + value.to(self.device))

    def compute(self) -> dict[str, float]:
        return frame_means({name: getattr(self, name) for name in SUM_NAMES})

"""Shared machinery of the CTC loss variants: precision, infinite samples, reduction, logging."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ctcocr.ctc.inputs import as_lengths, padded_targets
from ctcocr.ctc.targets import CTCFunction, compute_dtype, ctc_with_targets, finite_ctc

IMPLEMENTATIONS = {
    "builtin": ("torch.nn.functional", "ctc_loss"),
    "custom": ("ctcocr.ctc.loss", "ctc_loss"),
}
REDUCTIONS = ("mean", "sum", "none")
#: The blank's class index: 0, the convention of the charset and of the whole project.
BLANK = 0


@dataclass
class LossOutput:
    """What every loss module returns."""

    loss: Tensor
    """Scalar to backpropagate (reduction applied); (B,) for reduction='none'."""
    ctc: Tensor
    """Plain CTC value with the same reduction, detached, for logging."""
    num_infinite: int
    """Samples whose CTC was infinite (zeroed when zero_infinity)."""


@dataclass
class CTCTerms:
    """What a variant may build its per-sample loss from; all tensors are float32 (or float64)."""

    log_probs: Tensor
    """(T, B, C) log-probabilities, differentiable."""
    ctc: Tensor
    """(B,) plain CTC loss, 0 on infinite samples; detached when the variant uses targets."""
    gamma: Tensor | None
    """(T, B, C) detached alignment targets, or None when the variant does not use them."""
    frame_mask: Tensor
    """(T, B) bool, frames inside each sample's input length."""


def frame_cross_entropy(target: Tensor, log_probs: Tensor) -> Tensor:
    """Per-sample ``-sum_t sum_k target_tk log p_tk`` (B,) of (T, B, C) inputs; zero targets add
    nothing, even where ``log_probs`` is -inf or NaN (padded frames)."""
    terms = torch.where(target > 0, target * log_probs, torch.zeros_like(log_probs))
    return -terms.sum((0, 2))


def resolve_ctc(implementation: str) -> CTCFunction:
    """CTC engine by name: 'builtin' (torch's) or 'custom' (:func:`ctcocr.ctc.loss.ctc_loss`)."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"implementation must be one of {sorted(IMPLEMENTATIONS)}, got {implementation!r}"
        )
    module_name, attribute = IMPLEMENTATIONS[implementation]
    return getattr(importlib.import_module(module_name), attribute)


class CTCLossBase(nn.Module, ABC):
    """Base of the loss modules: subclasses define only :meth:`sample_loss`.

    Computes in float32 (float64 input stays float64) with autocast disabled; bf16/fp16 input is
    cast and renormalised with log_softmax, which leaves the logit gradient unchanged. Infinite
    samples (targets that cannot fit the frames) are counted and contribute 0 with zero gradient
    when ``zero_infinity``, +inf otherwise. Reduction 'mean' divides each sample's loss by its
    target length (clamped to 1) and averages over the batch, as torch's CTC does.

    The blank is class 0, as everywhere in the project (:class:`ctcocr.data.charset.Charset`):
    the model's classes are the blank followed by the charset's characters, so it is not an
    argument.

    Args:
        reduction: 'mean', 'sum' or 'none'.
        zero_infinity: zero infinite samples instead of returning +inf.
        implementation: CTC engine for the loss and the alignment targets, 'builtin' or 'custom'.
    """

    uses_alignment_targets: bool = False
    """Whether :meth:`sample_loss` needs ``terms.gamma`` (then ``terms.ctc`` is detached)."""
    blank: int = BLANK
    """Index of the blank class."""

    def __init__(
        self,
        reduction: str = "mean",
        zero_infinity: bool = True,
        implementation: str = "builtin",
    ) -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        self.zero_infinity = zero_infinity
        self.implementation = implementation
        self.ctc_fn = resolve_ctc(implementation)

    @abstractmethod
    def sample_loss(self, terms: CTCTerms) -> Tensor:
        """Per-sample loss (B,) before zero_infinity and reduction."""

    def forward(
        self, log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor
    ) -> LossOutput:
        """(T, B, C) log_softmax output, targets padded (B, S) or concatenated, lengths (B,)."""
        device = log_probs.device
        batch_size = log_probs.size(1)
        input_lengths = as_lengths(input_lengths, batch_size, device)
        target_lengths = as_lengths(target_lengths, batch_size, device)
        self._check_labels(targets, target_lengths, log_probs.size(-1))
        with torch.autocast(device_type=device.type, enabled=False):
            dtype = compute_dtype(log_probs.dtype)
            if log_probs.dtype != dtype:
                log_probs = log_probs.to(dtype).log_softmax(-1)
            args = (log_probs, targets, input_lengths, target_lengths, self.blank, self.ctc_fn)
            if self.uses_alignment_targets:
                ctc, infinite, gamma = ctc_with_targets(*args)
            else:
                (ctc, infinite), gamma = finite_ctc(*args), None
            frames = torch.arange(log_probs.size(0), device=device)
            frame_mask = frames[:, None] < input_lengths[None, :]
            loss = self.sample_loss(CTCTerms(log_probs, ctc, gamma, frame_mask))
            fill = 0.0 if self.zero_infinity else float("inf")
            loss = loss.masked_fill(infinite, fill)
            ctc = ctc.detach().masked_fill(infinite, fill)
            return LossOutput(
                loss=self._reduce(loss, target_lengths),
                ctc=self._reduce(ctc, target_lengths),
                num_infinite=int(infinite.sum()),
            )

    def _check_labels(self, targets: Tensor, target_lengths: Tensor, num_classes: int) -> None:
        """Raise naming the samples whose labels are the blank or outside [0, C)."""
        labels = padded_targets(targets, target_lengths)
        inside = torch.arange(labels.size(1), device=labels.device) < target_lengths[:, None]
        bad = inside & ((labels == self.blank) | (labels < 0) | (labels >= num_classes))
        samples = bad.any(1).nonzero().flatten().tolist()
        if samples:
            raise ValueError(
                f"targets of samples {samples} contain the blank ({self.blank}) or labels outside "
                f"[0, {num_classes}): {[labels[b][inside[b]].tolist() for b in samples[:3]]}"
            )

    def _reduce(self, per_sample: Tensor, target_lengths: Tensor) -> Tensor:
        if self.reduction == "mean":
            return (per_sample / target_lengths.clamp(min=1).to(per_sample.dtype)).mean()
        if self.reduction == "sum":
            return per_sample.sum()
        return per_sample

    def extra_repr(self) -> str:
        return (
            f"reduction={self.reduction!r}, zero_infinity={self.zero_infinity}, "
            f"implementation={self.implementation!r}"
        )

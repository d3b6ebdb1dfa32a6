"""Alignment targets (per-frame CTC posteriors) out of any CTC implementation, through its gradient.

The derivative of the summed CTC loss with respect to ``log_probs`` is ``-gamma`` (the
forward-backward occupancy) in the true convention, and ``exp(log_probs) - gamma`` in torch's
built-in convention. Both give the same gradient with respect to the logits,
``g - p * sum_c g = p - gamma``, so ``gamma = p * mask - (g - p * sum_c g)`` recovers the posteriors
from either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from ctcocr.ctc.inputs import Lengths, as_lengths

CTCFunction = Callable[..., Tensor]
"""A drop-in for :func:`torch.nn.functional.ctc_loss` (same positional and keyword arguments)."""


class CTCWithTargets(NamedTuple):
    """Per-sample CTC values and the alignment targets computed from the same call."""

    loss: Tensor
    """(B,) detached per-sample CTC loss (negative log-likelihood); 0 for infinite samples."""
    infinite: Tensor
    """(B,) bool, samples whose CTC loss is infinite (no alignment fits the frames)."""
    gamma: Tensor
    """(T, B, C) posterior occupancy; rows sum to 1 on valid frames, 0 on padded frames and on
    infinite samples."""


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype in which CTC quantities are computed: float64 stays, anything else becomes float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def finite_ctc(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Lengths,
    target_lengths: Lengths,
    blank: int = 0,
    ctc_fn: CTCFunction | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-sample CTC loss that is safe to backpropagate, and which samples were infinite.

    Args:
        log_probs: (T, B, C) log-probabilities, differentiable.
        targets: padded (B, S) or concatenated (sum(target_lengths),) labels.
        input_lengths, target_lengths: (B,) tensors or sequences.
        blank: index of the blank symbol.
        ctc_fn: CTC implementation, default :func:`torch.nn.functional.ctc_loss`.

    Returns:
        ``(loss, infinite)``: (B,) losses with infinite samples set to 0 with zero gradient, and the
        (B,) bool mask of those samples. Implementations give NaN gradients for an infinite loss
        unless told ``zero_infinity=True``, so a second call with it is made only when a sample is
        infinite.
    """
    ctc_fn = ctc_fn or torch.nn.functional.ctc_loss
    args = (log_probs, targets, input_lengths, target_lengths)
    loss = ctc_fn(*args, blank=blank, reduction="none", zero_infinity=False)
    infinite = torch.isinf(loss)
    if bool(infinite.any()):
        loss = ctc_fn(*args, blank=blank, reduction="none", zero_infinity=True)
        loss = loss.masked_fill(infinite, 0.0)
    return loss, infinite


def ctc_with_targets(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Lengths,
    target_lengths: Lengths,
    blank: int = 0,
    ctc_fn: CTCFunction | None = None,
) -> CTCWithTargets:
    """Per-sample CTC loss and alignment targets from one CTC call (two if a sample is infinite).

    Arguments as :func:`alignment_targets`. Works inside ``torch.no_grad()`` and autocast: the
    computation runs on a detached float32 (float64 stays float64) copy with gradients enabled.
    """
    device = log_probs.device
    batch_size = log_probs.size(1)
    lengths = as_lengths(input_lengths, batch_size, device)
    target_lengths = as_lengths(target_lengths, batch_size, device)
    with torch.enable_grad(), torch.autocast(device_type=device.type, enabled=False):
        leaf = log_probs.detach().to(compute_dtype(log_probs.dtype)).requires_grad_(True)
        loss, infinite = finite_ctc(leaf, targets, lengths, target_lengths, blank, ctc_fn)
        (grad,) = torch.autograd.grad(loss.sum(), leaf)
    probs = leaf.detach().exp()
    frames = torch.arange(log_probs.size(0), device=device)
    valid = (frames[:, None] < lengths[None, :]) & ~infinite[None, :]
    logit_grad = grad - probs * grad.sum(-1, keepdim=True)
    gamma = (probs * valid[..., None] - logit_grad).masked_fill(~valid[..., None], 0.0)
    return CTCWithTargets(loss.detach(), infinite, gamma)


def alignment_targets(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Lengths,
    target_lengths: Lengths,
    blank: int = 0,
    ctc_fn: CTCFunction | None = None,
) -> Tensor:
    """Per-frame posterior occupancy gamma (T, B, C) of the target under ``log_probs``.

    Args:
        log_probs: (T, B, C) normalised log-probabilities (any float dtype; not modified, not
            differentiated through).
        targets: padded (B, S) or concatenated (sum(target_lengths),) labels.
        input_lengths, target_lengths: (B,) tensors or sequences.
        blank: index of the blank symbol.
        ctc_fn: any drop-in for :func:`torch.nn.functional.ctc_loss`, whether its gradient
            follows the built-in convention (``p - gamma``) or the true one (``-gamma``); default
            the built-in.

    Returns:
        (T, B, C) float32 (float64 for float64 input) posteriors: each valid frame sums to 1; frames
        past a sample's input length are 0, and so are all frames of a sample whose target cannot be
        aligned (infinite CTC loss).
    """
    return ctc_with_targets(log_probs, targets, input_lengths, target_lengths, blank, ctc_fn).gamma

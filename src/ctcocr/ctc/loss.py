"""CTC loss in plain PyTorch, a drop-in for :func:`torch.nn.functional.ctc_loss`."""

from __future__ import annotations

import torch
from torch import Tensor

from ctcocr.ctc._ctc_function import CTCNegLogLikelihood
from ctcocr.ctc._ctc_lattice import build_lattice
from ctcocr.ctc.inputs import Lengths, as_lengths, padded_targets

_REDUCTIONS = ("none", "sum", "mean")
_IMPLEMENTATIONS = ("torch", "triton")


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Lengths,
    target_lengths: Lengths,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
    implementation: str = "torch",
) -> Tensor:
    """Connectionist temporal classification loss, same arguments and values as torch's.

    Args:
        log_probs: (T, B, C) log-probabilities (normally ``log_softmax`` output), or (T, C)
            for one unbatched sample. float32 or float64; float16 and bfloat16 are computed
            in float32.
        targets: padded (B, S) or concatenated (sum(target_lengths),) labels, never ``blank``.
        input_lengths: (B,) frames used per sample, each <= T (tensor, list or tuple).
        target_lengths: (B,) labels per sample.
        blank: index of the blank class.
        reduction: ``'none'`` -> (B,); ``'sum'``; ``'mean'``: each loss divided by its target
            length (at least 1), then averaged over the batch.
        zero_infinity: replace the +inf loss of infeasible samples (input too short for the
            target) by 0.
        implementation: ``'torch'`` (default; any device, double backward) or ``'triton'``
            (CUDA kernels, one program per sample; first order only; verified in Triton's
            interpreter on CPU, not yet timed on a GPU).

    Returns:
        The loss, (B,) for ``'none'``, a scalar otherwise.

    Gradient convention: the gradient with respect to ``log_probs`` is the true derivative,
    ``-gamma`` (the posterior probability that frame t emits class k, times the reduction
    weight), and zero on frames past each input length. torch's built-in returns
    ``exp(log_probs) - gamma`` instead; through ``log_softmax`` both give the same gradient
    with respect to the logits. Infeasible samples get a zero gradient (torch gives NaN unless
    ``zero_infinity``).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if implementation not in _IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {_IMPLEMENTATIONS}, got {implementation!r}")
    unbatched = log_probs.dim() == 2
    if unbatched:
        log_probs, targets = log_probs.unsqueeze(1), targets.reshape(1, -1)
    if log_probs.dim() != 3 or log_probs.numel() == 0:
        shape = tuple(log_probs.shape)
        raise ValueError(f"log_probs must be a non-empty (T, B, C) or (T, C), got {shape}")
    if not log_probs.is_floating_point():
        raise TypeError(f"log_probs must be floating point, got {log_probs.dtype}")
    if log_probs.dtype not in (torch.float32, torch.float64):
        log_probs = log_probs.float()
    num_frames, batch_size, num_classes = log_probs.shape
    if not 0 <= blank < num_classes:
        raise ValueError(f"blank {blank} is not a class index in [0, {num_classes})")

    device = log_probs.device
    input_lengths = as_lengths(input_lengths, batch_size, device)
    target_lengths = as_lengths(target_lengths, batch_size, device)
    _check_lengths(input_lengths, "input_lengths", num_frames)
    _check_lengths(target_lengths, "target_lengths", None)
    padded = padded_targets(targets, target_lengths)
    _check_labels(padded, target_lengths, blank, num_classes)

    if implementation == "triton":
        from ctcocr.ctc._ctc_triton import triton_ctc_neg_log_likelihood  # triton is optional

        losses = triton_ctc_neg_log_likelihood(log_probs, padded, input_lengths, target_lengths, blank)
    else:
        lattice = build_lattice(padded, target_lengths, input_lengths, blank, num_classes)
        losses = CTCNegLogLikelihood.apply(log_probs, lattice)
    if zero_infinity:
        losses = torch.where(torch.isinf(losses), 0.0, losses)
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        return (losses / target_lengths.clamp_min(1).to(losses.dtype)).mean()
    return losses[0] if unbatched else losses


def _check_lengths(lengths: Tensor, name: str, upper: int | None) -> None:
    bad = (lengths < 0) if upper is None else (lengths < 0) | (lengths > upper)
    if bool(bad.any()):
        sample = int(bad.nonzero()[0])
        bound = "must be >= 0" if upper is None else f"must be in [0, {upper}]"
        raise ValueError(f"{name}[{sample}] = {int(lengths[sample])} {bound}")


def _check_labels(padded: Tensor, target_lengths: Tensor, blank: int, num_classes: int) -> None:
    positions = torch.arange(padded.size(1), device=padded.device)
    used = positions < target_lengths[:, None]
    bad = used & ((padded < 0) | (padded >= num_classes) | (padded == blank))
    if bool(bad.any()):
        sample, position = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"target {sample} has label {int(padded[sample, position])} at position {position}: "
            f"labels must be in [0, {num_classes}) and differ from blank {blank}"
        )

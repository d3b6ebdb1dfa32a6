"""Log-space CTC forward-backward as Triton kernels: one program per sample, time loop inside.

Each program holds the extended target of its sample (S = 2 L + 1 states, padded to a power of
two) in registers and walks the frames. The shifted states s - 1, s - 2 (forward) and s + 1,
s + 2 (backward) of the previous step are read back from global memory after a block barrier: the
forward pass keeps every alpha frame anyway for the backward pass, which needs two rows only.

* forward: alpha (B, T, S_block), log P(target) (B,);
* backward: beta frame by frame, gamma_t(s) = exp(alpha_t(s) + beta_t(s) - log P) added into the
  gradient (T, B, C) with atomics (several states share a class), scaled by -grad_loss.

Runs on CUDA tensors, or on CPU tensors when the kernels were defined with ``TRITON_INTERPRET=1``
(Triton's interpreter, used by the tests). Computes in the input's dtype, float32 or float64.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.autograd.function import once_differentiable

from ctcocr.ctc._ctc_lattice import LOG_ZERO
from ctcocr.ctc.inputs import required_frames


@triton.jit
def _logaddexp3(a, b, c):
    top = tl.maximum(tl.maximum(a, b), c)
    return top + tl.log(tl.exp(a - top) + tl.exp(b - top) + tl.exp(c - top))


@triton.jit
def _state_labels(target_ptr, states, num_states, blank):
    """Labels of the extended target (blank, l1, blank, ..., lL, blank) at ``states``.

    Blank for even states and for states outside [0, num_states).
    """
    is_label = (states >= 0) & (states < num_states) & (states % 2 == 1)
    label = tl.load(target_ptr + (states - 1) // 2, mask=is_label, other=blank)
    return tl.where(is_label, label, blank)


@triton.jit
def _emission(log_probs_ptr, frame_offset, labels, mask, log_zero, stride_c):
    """Log emission of every state at one frame; log_zero where masked or -inf."""
    value = tl.load(log_probs_ptr + frame_offset + labels * stride_c, mask=mask, other=log_zero)
    return tl.maximum(value, log_zero)


@triton.jit
def _ctc_alpha_kernel(
    log_probs_ptr,  # (T, B, C)
    targets_ptr,  # (B, L_max) int64
    input_lengths_ptr,  # (B,) int64
    target_lengths_ptr,  # (B,) int64
    alpha_ptr,  # (B, rows, BLOCK_S)
    log_likelihood_ptr,  # (B,)
    stride_t,
    stride_b,
    stride_c,
    stride_target,
    stride_alpha_b,
    stride_alpha_t,
    alpha_rows,  # T to keep every frame, 2 to keep the last two only
    blank,
    log_zero,
    BLOCK_S: tl.constexpr,
):
    sample = tl.program_id(0).to(tl.int64)
    num_frames = tl.load(input_lengths_ptr + sample)
    num_states = 2 * tl.load(target_lengths_ptr + sample) + 1
    s = tl.arange(0, BLOCK_S)
    valid = s < num_states
    target_ptr = targets_ptr + sample * stride_target
    labels = _state_labels(target_ptr, s, num_states, blank)
    prev_labels = _state_labels(target_ptr, s - 2, num_states, blank)
    skip = (labels != blank) & (prev_labels != blank) & (labels != prev_labels)  # s - 2 -> s

    lp_sample = log_probs_ptr + sample * stride_b
    alpha_sample = alpha_ptr + sample * stride_alpha_b
    first = _emission(lp_sample, 0, labels, valid & (num_frames > 0), log_zero, stride_c)
    first = tl.where(num_frames > 0, first, 0.0)  # no frame: the empty target has P = 1
    alpha = tl.where(valid & (s < 2), first, log_zero)
    tl.store(alpha_sample + s, alpha)
    emission = _emission(lp_sample, stride_t, labels, valid & (num_frames > 1), log_zero, stride_c)
    for t in range(1, num_frames):
        # the next frame's emissions are loaded one step ahead, hiding their latency
        ahead = valid & (t + 1 < num_frames)
        next_emission = _emission(lp_sample, (t + 1) * stride_t, labels, ahead, log_zero, stride_c)
        tl.debug_barrier()  # the previous frame is in memory for every thread
        prev = alpha_sample + ((t - 1) % alpha_rows) * stride_alpha_t + s
        from_prev = tl.load(prev - 1, mask=s >= 1, other=log_zero)
        from_skip = tl.load(prev - 2, mask=skip, other=log_zero)
        alpha = tl.where(valid, _logaddexp3(alpha, from_prev, from_skip) + emission, log_zero)
        tl.store(alpha_sample + (t % alpha_rows) * stride_alpha_t + s, alpha)
        emission = next_emission

    final = valid & (s >= num_states - 2)
    final_alpha = tl.where(final, alpha, log_zero)
    top = tl.max(final_alpha, axis=0)
    total = tl.sum(tl.where(final, tl.exp(final_alpha - top), 0.0), axis=0)
    tl.store(log_likelihood_ptr + sample, top + tl.log(total))


@triton.jit
def _ctc_beta_grad_kernel(
    log_probs_ptr,  # (T, B, C)
    targets_ptr,  # (B, L_max) int64
    frames_ptr,  # (B,) int64: input lengths, 0 where no gradient flows
    target_lengths_ptr,  # (B,) int64
    alpha_ptr,  # (B, T, BLOCK_S)
    log_likelihood_ptr,  # (B,)
    grad_loss_ptr,  # (B,)
    scratch_ptr,  # (B, 2, BLOCK_S)
    grad_ptr,  # (T, B, C), zero-initialised
    stride_t,
    stride_b,
    stride_c,
    stride_target,
    stride_alpha_b,
    stride_alpha_t,
    stride_grad_t,
    stride_grad_b,
    stride_grad_c,
    blank,
    log_zero,
    BLOCK_S: tl.constexpr,
):
    sample = tl.program_id(0).to(tl.int64)
    num_frames = tl.load(frames_ptr + sample)
    num_states = 2 * tl.load(target_lengths_ptr + sample) + 1
    s = tl.arange(0, BLOCK_S)
    valid = s < num_states
    target_ptr = targets_ptr + sample * stride_target
    labels = _state_labels(target_ptr, s, num_states, blank)
    next_labels = _state_labels(target_ptr, s + 2, num_states, blank)
    skip_up = (labels != blank) & (next_labels != blank) & (labels != next_labels)  # s -> s + 2

    log_likelihood = tl.load(log_likelihood_ptr + sample)
    scale = -tl.load(grad_loss_ptr + sample)
    lp_sample = log_probs_ptr + sample * stride_b
    alpha_sample = alpha_ptr + sample * stride_alpha_b
    scratch_sample = scratch_ptr + sample * 2 * BLOCK_S
    grad_sample = grad_ptr + sample * stride_grad_b + labels * stride_grad_c
    ends = tl.where(valid & (s >= num_states - 2), 0.0, log_zero)
    beta = ends.to(log_probs_ptr.dtype.element_ty)
    last = num_frames - 1
    present = valid & (last >= 0)
    alpha = tl.load(alpha_sample + last * stride_alpha_t + s, mask=present, other=log_zero)
    emission = _emission(lp_sample, last * stride_t, labels, present, log_zero, stride_c)
    for step in range(num_frames):
        t = last - step
        # alpha and emissions of frame t - 1 are loaded one step ahead, hiding their latency
        ahead = valid & (t >= 1)
        prev_row = alpha_sample + (t - 1) * stride_alpha_t + s
        prev_alpha = tl.load(prev_row, mask=ahead, other=log_zero)
        prev_emission = _emission(lp_sample, (t - 1) * stride_t, labels, ahead, log_zero, stride_c)
        gamma = tl.exp(alpha + beta - log_likelihood)
        tl.atomic_add(grad_sample + t * stride_grad_t, gamma * scale, mask=valid)
        # beta_{t-1}(s) from beta_t + e_t at s, s + 1 and s + 2 (unused after frame 0)
        after = tl.where(valid, beta + emission, log_zero)
        row = scratch_sample + (t % 2) * BLOCK_S + s
        tl.store(row, after)
        tl.debug_barrier()
        to_next = tl.load(row + 1, mask=s + 1 < num_states, other=log_zero)
        to_skip = tl.load(row + 2, mask=skip_up, other=log_zero)
        beta = _logaddexp3(after, to_next, to_skip)
        alpha, emission = prev_alpha, prev_emission


def _launch_config(max_target_length: int) -> tuple[int, int]:
    """BLOCK_S (states, power of two) and warps for the longest target of a batch."""
    block = max(16, triton.next_power_of_2(2 * max_target_length + 1))
    return block, min(max(block // 32, 1), 8)


class TritonCTCNegLogLikelihood(torch.autograd.Function):
    """log_probs (T, B, C) -> -log P(target | input) per sample (B,), +inf where infeasible.

    Arguments after log_probs: padded targets (B, L_max) int64, input_lengths (B,) int64,
    target_lengths (B,) int64, blank. Inputs must be valid (``ctc_loss`` checks them). The
    gradient is the true derivative -gamma w.r.t. log_probs, zero past each input length and for
    infeasible samples; once differentiable.
    """

    @staticmethod
    def forward(
        ctx: Any,
        log_probs: Tensor,
        padded: Tensor,
        input_lengths: Tensor,
        target_lengths: Tensor,
        blank: int,
    ) -> Tensor:
        num_frames, batch_size, _ = log_probs.shape
        padded = padded.contiguous() if padded.numel() else padded.new_zeros(batch_size, 1)
        block, warps = _launch_config(padded.size(1))
        need_alpha = ctx.needs_input_grad[0]
        rows = num_frames if need_alpha else 2
        alpha = log_probs.new_empty(batch_size, max(rows, 1), block)
        log_likelihood = log_probs.new_empty(batch_size)
        _ctc_alpha_kernel[(batch_size,)](
            log_probs, padded, input_lengths, target_lengths, alpha, log_likelihood,
            *log_probs.stride(), padded.stride(0), alpha.stride(0), alpha.stride(1), alpha.size(1),
            blank, LOG_ZERO, BLOCK_S=block, num_warps=warps,
        )  # fmt: skip
        feasible = input_lengths >= required_frames(padded, target_lengths)
        if need_alpha:
            ctx.save_for_backward(log_probs, padded, input_lengths, target_lengths, alpha,
                                  log_likelihood, feasible)  # fmt: skip
            ctx.blank, ctx.block, ctx.warps = blank, block, warps
        return torch.where(feasible, -log_likelihood, torch.inf)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_loss: Tensor) -> tuple[Tensor, None, None, None, None]:
        log_probs, padded, input_lengths, target_lengths, alpha, log_likelihood, feasible = (
            ctx.saved_tensors
        )
        batch_size = log_probs.size(1)
        grad = torch.zeros_like(log_probs, memory_format=torch.contiguous_format)
        scratch = log_probs.new_empty(batch_size, 2, ctx.block)
        frames = torch.where(feasible, input_lengths, 0)
        _ctc_beta_grad_kernel[(batch_size,)](
            log_probs, padded, frames, target_lengths, alpha, log_likelihood,
            grad_loss.to(log_probs.dtype).contiguous(), scratch, grad,
            *log_probs.stride(), padded.stride(0), alpha.stride(0), alpha.stride(1),
            *grad.stride(), ctx.blank, LOG_ZERO, BLOCK_S=ctx.block, num_warps=ctx.warps,
        )  # fmt: skip
        return grad, None, None, None, None


def triton_ctc_neg_log_likelihood(
    log_probs: Tensor, padded: Tensor, input_lengths: Tensor, target_lengths: Tensor, blank: int
) -> Tensor:
    """Per-sample CTC loss (B,) from log_probs (T, B, C) float32/float64, padded targets (B, L)."""
    if log_probs.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"the Triton CTC kernels take float32 or float64, got {log_probs.dtype}")
    return TritonCTCNegLogLikelihood.apply(
        log_probs, padded.long(), input_lengths.long(), target_lengths.long(), blank
    )

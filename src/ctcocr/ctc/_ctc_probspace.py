"""Rescaled probability-space CTC forward-backward (Graves' scaling) with a precision check.

Each frame of alpha and beta is divided by its sum and the logs of those sums are accumulated, so
one step costs a few multiply-adds and no transcendental function. It loses precision where the
mass that matters falls below the dtype's smallest normal number relative to its frame, which
happens on confident outputs. Such samples are detected, not trusted:

* consistency: log P(target) computed at every frame t from alpha_t, beta_t and the scales must
  be the same for all t (a state dropped by one pass but not the other changes it);
* overlap: at every frame the sum over states of normalised alpha * beta must stay far above the
  underflow level, otherwise states dropped by both passes could have carried the likelihood;
* scales: every frame sum of alpha and beta must stay far above the underflow level, otherwise
  subnormal emissions, which both passes share, carry the likelihood with too few bits.

Flagged samples are returned for exact recomputation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ctcocr.ctc._ctc_lattice import Lattice
from ctcocr.ctc._ctc_workspace import work_buffer

#: Largest accepted spread of the per-frame log-likelihoods, in units of the rounding expected
#: from T normalised steps in the dtype plus float64 sums of log-scales:
#: eps * sqrt(T) + eps64 * |log P|.
_CONSISTENCY_IN_ROUNDING = 30.0
#: Smallest accepted overlap or scale of a frame: underflow level / eps, for float32 and float64.
_SMALLEST_TRUSTED = {torch.float32: 1e-30, torch.float64: 1e-290}


def prob_forward_backward(
    log_probs: Tensor, lattice: Lattice, need_gamma: bool
) -> tuple[Tensor, Tensor | None, Tensor]:
    """log_probs (T, B, C) -> log-likelihood (B,) float64, gamma (T, S, B) or None, flagged (B,).

    gamma is the posterior state occupancy, zero past the input lengths and for infeasible samples.
    It lives in a reused work buffer: valid until the next call with the same dtype and device.
    Log-likelihoods and gamma of flagged samples are unreliable: callers replace them.
    """
    probs = _state_probs(log_probs, lattice)
    skip = lattice.skip.to(probs.dtype)
    alpha, alpha_scale = _forward(probs, skip)
    beta_scale, overlap = _backward_into_occupancy(probs, skip, lattice, alpha)

    num_frames = probs.size(0)
    frames = torch.arange(num_frames, device=probs.device)[:, None]
    last_frame = lattice.input_lengths - 1
    log_alpha_scale = alpha_scale.double().log().cumsum(0)
    beta_steps = torch.where(frames < last_frame, beta_scale.double().log(), 0.0)
    log_beta_scale = beta_steps.flip(0).cumsum(0).flip(0)
    per_frame = overlap.double().log() + log_alpha_scale + log_beta_scale  # each is log P
    log_likelihood = per_frame.gather(0, last_frame.clamp_min(0)[None]).squeeze(0)
    log_likelihood = torch.where(lattice.input_lengths > 0, log_likelihood, 0.0)

    frame_valid = frames < lattice.input_lengths
    spread = torch.where(frame_valid, (per_frame - log_likelihood).abs(), 0.0).amax(0)
    smallest = torch.minimum(torch.minimum(overlap, alpha_scale), beta_scale)
    smallest = torch.where(frame_valid, smallest, 1.0).amin(0)
    rounding = torch.finfo(probs.dtype).eps * num_frames**0.5
    rounding = rounding + torch.finfo(torch.float64).eps * log_likelihood.abs()
    tolerance = _CONSISTENCY_IN_ROUNDING * rounding
    trusted = (spread <= tolerance) & (smallest >= _SMALLEST_TRUSTED[probs.dtype])
    flagged = lattice.feasible & (lattice.input_lengths > 0) & ~trusted
    if not need_gamma:
        return log_likelihood, None, flagged

    occupied = frame_valid & lattice.feasible
    gamma = alpha.mul_(torch.where(occupied, overlap.reciprocal(), 0.0)[:, None, :])
    unused = (~lattice.feasible).nonzero().squeeze(1)  # their columns may hold NaN
    if unused.numel():
        gamma.index_fill_(2, unused, 0.0)
    return log_likelihood, gamma, flagged


def _state_probs(log_probs: Tensor, lattice: Lattice) -> Tensor:
    """Probability of every state (T, S, B): 0 on invalid states, 1 past the input length.

    exp runs on whichever is smaller: the classes (T, B, C) before the gather, or the states after.
    """
    num_frames, batch_size, num_classes = log_probs.shape
    num_states = lattice.num_states
    dtype, device = log_probs.dtype, log_probs.device
    frame_valid = lattice.frame_valid(num_frames)  # (T, 1, B)
    all_frames_valid = bool(frame_valid.all())
    probs = work_buffer("ctc.state_probs", (num_frames, num_states, batch_size), dtype, device)
    flat = batch_size * num_classes
    if num_classes <= num_states:
        table = work_buffer("ctc.class_probs", (num_frames, flat + 1), dtype, device)
        class_probs = table[:, :flat].view(num_frames, batch_size, num_classes)
        torch.exp(log_probs, out=class_probs)
        table[:, flat] = 0.0  # the slot read by invalid states
        if not all_frames_valid:  # padding, even NaN, is never read
            class_probs.masked_fill_(~frame_valid[:, 0, :, None], 1.0)
        index = torch.where(lattice.state_valid, lattice.flat_index.view_as(lattice.labels), flat)
        torch.index_select(table, 1, index.reshape(-1), out=probs.view(num_frames, -1))
        return probs
    flat_log_probs = log_probs.reshape(num_frames, flat)
    torch.index_select(flat_log_probs, 1, lattice.flat_index, out=probs.view(num_frames, -1))
    probs.exp_()
    probs.masked_fill_(~lattice.state_valid, 0.0)
    if not all_frames_valid:
        probs.masked_fill_(~frame_valid, 1.0)
    return probs


def _forward(probs: Tensor, skip: Tensor) -> tuple[Tensor, Tensor]:
    """Normalised alpha (T, S, B) (emission at t included), in a work buffer, and frame sums (T, B).

    The buffer has two zero rows before the states of every frame, so the transitions from
    s - 1 and s - 2 read whole shifted views; all per-frame views are made once, by unbind.
    """
    num_frames, num_states, batch_size = probs.shape
    shape = (num_frames, num_states + 2, batch_size)
    padded = work_buffer("ctc.alpha", shape, probs.dtype, probs.device)
    padded[:, :2].zero_()
    alpha = padded[:, 2:]
    stay, step, jump = alpha.unbind(0), padded[:, 1:-1].unbind(0), padded[:, :-2].unbind(0)
    emit = probs.unbind(0)
    scale = probs.new_empty(num_frames, batch_size)
    scales = scale.unbind(0)
    stay[0].zero_()
    stay[0][:2] = emit[0][:2]
    torch.sum(stay[0], 0, out=scales[0])
    stay[0].div_(scales[0])
    for t in range(1, num_frames):
        cur = stay[t]
        torch.add(stay[t - 1], step[t - 1], out=cur)
        cur.addcmul_(jump[t - 1], skip)
        cur.mul_(emit[t])
        torch.sum(cur, 0, out=scales[t])
        cur.div_(scales[t])
    return alpha, scale


def _backward_into_occupancy(
    probs: Tensor, skip: Tensor, lattice: Lattice, alpha: Tensor
) -> tuple[Tensor, Tensor]:
    """Run the normalised beta recursion (emissions after t only), multiplying it into ``alpha``.

    beta restarts from the final states at each sample's last frame, with scale 1 there. Returns
    the per-frame beta sums (T, B) and the per-frame sums of alpha * beta, the overlaps (T, B).
    """
    num_frames, num_states, batch_size = probs.shape
    ends = lattice.final_states().to(probs.dtype)
    skip_up = torch.zeros_like(skip)  # s -> s + 2 allowed
    skip_up[:-2] = skip[2:]
    rows = work_buffer("ctc.beta_rows", (3, num_states + 2, batch_size), probs.dtype, probs.device)
    following, current = rows[0, :num_states], rows[1, :num_states]
    work = rows[2]
    work[num_states:].zero_()  # nothing follows the last state
    emitted, to_next, to_jump = work[:num_states], work[1 : num_states + 1], work[2:]
    emit, occupancy = probs.unbind(0), alpha.unbind(0)
    scale = probs.new_ones(num_frames, batch_size)
    overlap = probs.new_empty(num_frames, batch_size)
    scales, overlaps = scale.unbind(0), overlap.unbind(0)
    following.copy_(ends)
    occupancy[-1].mul_(following)
    torch.sum(occupancy[-1], 0, out=overlaps[-1])
    restarts = _samples_ending_at(lattice.input_lengths - 1, num_frames - 1)
    for t in range(num_frames - 2, -1, -1):
        torch.mul(emit[t + 1], following, out=emitted)
        torch.add(emitted, to_next, out=current)
        current.addcmul_(to_jump, skip_up)
        torch.sum(current, 0, out=scales[t])
        current.div_(scales[t])
        if t in restarts:
            samples = restarts[t]
            current.index_copy_(1, samples, ends.index_select(1, samples))
            scales[t].index_fill_(0, samples, 1.0)
        occupancy[t].mul_(current)
        torch.sum(occupancy[t], 0, out=overlaps[t])
        following, current = current, following
    return scale, overlap


def _samples_ending_at(last_frames: Tensor, before: int) -> dict[int, Tensor]:
    """Frame -> indices of the samples whose last frame it is, for frames in [0, before)."""
    groups: dict[int, list[int]] = {}
    for sample, frame in enumerate(last_frames.tolist()):
        if 0 <= frame < before:
            groups.setdefault(frame, []).append(sample)
    return {t: torch.tensor(s, device=last_frames.device) for t, s in groups.items()}

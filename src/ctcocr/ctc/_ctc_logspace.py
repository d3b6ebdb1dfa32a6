"""Exact log-space CTC forward-backward written with out-of-place ops, so autograd can trace it.

It is the reference path: it serves samples the probability-space fast path flags, and double
backward (its gamma is differentiable with respect to the emissions).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ctcocr.ctc._ctc_lattice import LOG_ZERO, Lattice


def _logsumexp3(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    top = torch.maximum(torch.maximum(a, b), c)
    return top + ((a - top).exp() + (b - top).exp() + (c - top).exp()).log()


def _shifted(x: Tensor, offset: int, fill: Tensor) -> Tensor:
    """y[s] = x[s - offset] along the state dimension of (S, B), ``fill`` where out of range."""
    num_states = x.size(0)
    rows = min(abs(offset), num_states)
    fill = fill.expand(rows, x.size(1))
    if offset > 0:
        return torch.cat([fill, x[: num_states - rows]])
    return torch.cat([x[rows:], fill])


def log_forward_backward(emissions: Tensor, lattice: Lattice) -> tuple[Tensor, Tensor]:
    """Log-likelihood (B,) and state occupancy gamma (T, S, B) from log emissions (T, S, B).

    gamma_t(s) is the posterior probability of state s at frame t; it is zero on frames past the
    input length and for infeasible samples (whose log-likelihood is meaningless: callers mask it).
    """
    num_frames, num_states, _batch_size = emissions.shape
    frame_valid = lattice.frame_valid(num_frames)
    final = lattice.final_states()
    skip = lattice.skip
    skip_up = _shifted(skip, -2, skip.new_zeros(()))
    log_zero = emissions.new_tensor(LOG_ZERO)

    starts = (torch.arange(num_states, device=emissions.device) < 2)[:, None]
    alpha = torch.where(starts, emissions[0], log_zero)
    alphas = [alpha]
    for t in range(1, num_frames):
        from_prev = _shifted(alpha, 1, log_zero)
        from_skip = torch.where(skip, _shifted(alpha, 2, log_zero), log_zero)
        step = _logsumexp3(alpha, from_prev, from_skip) + emissions[t]
        alpha = torch.where(frame_valid[t], step, alpha)  # frozen after the last frame
        alphas.append(alpha)
    log_likelihood = torch.where(final, alpha, log_zero).logsumexp(0)

    ends = torch.where(final, 0.0, log_zero).to(emissions.dtype)
    beta = ends
    betas = [beta]
    last_frame = lattice.input_lengths - 1
    for t in range(num_frames - 2, -1, -1):
        after = beta + emissions[t + 1]
        to_next = _shifted(after, -1, log_zero)
        to_skip = torch.where(skip_up, _shifted(after, -2, log_zero), log_zero)
        beta = torch.where(t < last_frame, _logsumexp3(after, to_next, to_skip), ends)
        betas.append(beta)
    betas.reverse()

    occupied = frame_valid & lattice.feasible[None, None, :]
    log_gamma = torch.stack(alphas) + torch.stack(betas) - log_likelihood
    gamma = torch.where(occupied, log_gamma, log_zero).exp()
    return log_likelihood, gamma

"""Autograd Function for per-sample CTC losses with an explicit forward-backward pass."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from ctcocr.ctc._ctc_lattice import Lattice, state_emissions, states_to_classes
from ctcocr.ctc._ctc_logspace import log_forward_backward
from ctcocr.ctc._ctc_probspace import prob_forward_backward


def forward_backward(
    log_probs: Tensor, lattice: Lattice, need_gamma: bool
) -> tuple[Tensor, Tensor | None]:
    """log_probs (T, B, C) -> log-likelihood (B,) and gamma (T, S, B) (work buffer) or None.

    Probability space in the input's dtype first; the samples it flags are recomputed in float64
    probability space, and those flagged again in float64 log space.
    """
    log_likelihood, gamma, flagged = prob_forward_backward(log_probs, lattice, need_gamma)
    if bool(flagged.any()):
        samples = flagged.nonzero().squeeze(1)
        subset, sub_probs = lattice.select(samples), log_probs.index_select(1, samples).double()
        if log_probs.dtype == torch.float64:
            exact = log_forward_backward(state_emissions(sub_probs, subset), subset)
        else:
            exact = forward_backward(sub_probs, subset, need_gamma)
        log_likelihood[samples] = exact[0].to(log_likelihood.dtype)
        if gamma is not None:
            gamma[:, :, samples] = exact[1].to(gamma.dtype)
    return log_likelihood, gamma


# With OpenMP the thread count is per calling thread; other backends warn when it changes.
_OPENMP = "parallel backend: OpenMP" in torch.__config__.parallel_info()


@contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run CPU work with one intra-op thread, restoring the caller's setting afterwards.

    The time loop issues thousands of small ops that cannot use threads; with more than one,
    the few large ops around it open OpenMP regions whose spinning workers compete with the loop
    for the cores. Measured on the project's shared 2-core machine at 128x256x32: forward +
    backward took 164 ms with 2 threads and 56 ms with this guard (54 ms with 1 thread).
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1 or not _OPENMP:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class CTCNegLogLikelihood(torch.autograd.Function):
    """log_probs (T, B, C) -> -log P(target | input) per sample (B,), +inf where infeasible.

    The gradient is the true derivative with respect to log_probs: -gamma (the posterior
    occupancy of each class) on frames before the input length, zero elsewhere and for infeasible
    samples. Double backward recomputes gamma with the traceable log-space recursion.
    """

    @staticmethod
    def forward(ctx: Any, log_probs: Tensor, lattice: Lattice) -> Tensor:
        ctx.lattice = lattice
        ctx.in_classes = lattice.num_classes <= lattice.num_states
        with _one_cpu_thread(log_probs.device):
            log_likelihood, gamma = forward_backward(log_probs, lattice, ctx.needs_input_grad[0])
            if gamma is not None:  # copy out of the work buffer, in the smaller layout
                gamma = states_to_classes(gamma, lattice) if ctx.in_classes else gamma.clone()
        ctx.save_for_backward(log_probs, gamma)
        losses = torch.where(lattice.feasible, -log_likelihood, torch.inf)
        return losses.to(log_probs.dtype)

    @staticmethod
    def backward(ctx: Any, grad_loss: Tensor) -> tuple[Tensor, None]:
        log_probs, gamma = ctx.saved_tensors
        lattice: Lattice = ctx.lattice
        if torch.is_grad_enabled():  # create_graph: make the gradient itself differentiable
            _, gamma = log_forward_backward(state_emissions(log_probs, lattice), lattice)
            return states_to_classes(gamma * -grad_loss, lattice), None
        with _one_cpu_thread(log_probs.device):
            if ctx.in_classes:
                return gamma * -grad_loss[:, None], None
            return states_to_classes(gamma * -grad_loss, lattice), None

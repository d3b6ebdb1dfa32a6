"""The CTC lattice of a batch in states-major layout: states (S = 2 L_max + 1) outer, batch inner.

With the batch as the inner dimension, the shifts s - 1 and s - 2 of the recursions are contiguous
slices of a (S, B) frame, and one ``index_select`` gathers the emissions of every state at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ctcocr.ctc.inputs import extended_targets, required_frames

#: Finite stand-in for log(0): keeps log-sum-exp gradients finite where every term is "zero".
LOG_ZERO = -1e30


@dataclass(frozen=True)
class Lattice:
    """Index tensors describing the extended targets of a batch.

    labels: (S, B) int64 extended labels.
    num_classes: C.
    skip: (S, B) bool, True where the transition s - 2 -> s is allowed.
    state_valid: (S, B) bool, True for s < 2 * target_length + 1.
    input_lengths, target_lengths: (B,) int64.
    feasible: (B,) bool, False where the input is too short for the target (loss is +inf).
    """

    labels: Tensor
    num_classes: int
    skip: Tensor
    state_valid: Tensor
    input_lengths: Tensor
    target_lengths: Tensor
    feasible: Tensor

    @property
    def num_states(self) -> int:
        return self.skip.size(0)

    @property
    def flat_index(self) -> Tensor:
        """(S * B,) position of state s of sample b in log_probs viewed as (T, B * C)."""
        offsets = torch.arange(self.labels.size(1), device=self.labels.device) * self.num_classes
        return (self.labels + offsets).reshape(-1)

    def select(self, samples: Tensor) -> Lattice:
        """The lattice of a subset of samples, indices (n,)."""
        return Lattice(
            self.labels[:, samples],
            self.num_classes,
            self.skip[:, samples],
            self.state_valid[:, samples],
            self.input_lengths[samples],
            self.target_lengths[samples],
            self.feasible[samples],
        )

    def frame_valid(self, num_frames: int) -> Tensor:
        """(T, 1, B) bool, True for frames t < input_length."""
        frames = torch.arange(num_frames, device=self.input_lengths.device)
        return (frames[:, None] < self.input_lengths[None, :])[:, None, :]

    def final_states(self) -> Tensor:
        """(S, B) bool, True where an alignment may end: the last 2 states (1 if empty target)."""
        states = torch.arange(self.num_states, device=self.skip.device)[:, None]
        last = 2 * self.target_lengths[None, :]
        return (states == last) | (states == last - 1)


def build_lattice(
    padded: Tensor, target_lengths: Tensor, input_lengths: Tensor, blank: int, num_classes: int
) -> Lattice:
    """Lattice of padded targets (B, L_max) int64 for log_probs with ``num_classes`` classes."""
    ext = extended_targets(padded, blank).t().contiguous()  # (S, B)
    num_states = ext.size(0)
    states = torch.arange(num_states, device=ext.device)[:, None]
    state_valid = states < (2 * target_lengths + 1)[None, :]
    skip = torch.zeros_like(state_valid)
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2]) & state_valid[2:]
    needed = required_frames(padded, target_lengths)
    feasible = input_lengths >= needed
    return Lattice(ext, num_classes, skip, state_valid, input_lengths, target_lengths, feasible)


def state_emissions(log_probs: Tensor, lattice: Lattice) -> Tensor:
    """log_probs (T, B, C) -> log emission of every state (T, S, B).

    Invalid states get LOG_ZERO and frames past a sample's input length get 0 (probability 1), so
    that padding, even NaN, never reaches the recursions.
    """
    num_frames = log_probs.size(0)
    flat = log_probs.reshape(num_frames, -1).index_select(1, lattice.flat_index)
    emissions = flat.view(num_frames, lattice.num_states, -1).clamp_min(LOG_ZERO)
    frame_valid = lattice.frame_valid(num_frames)
    keep = lattice.state_valid[None] & frame_valid
    fill = torch.where(frame_valid, LOG_ZERO, 0.0).to(emissions.dtype)  # (T, 1, B)
    return torch.where(keep, emissions, fill)


def states_to_classes(values: Tensor, lattice: Lattice) -> Tensor:
    """Sum per-state values (T, S, B) into per-class values (T, B, C) (differentiable)."""
    num_frames, _, batch_size = values.shape
    out = values.new_zeros(num_frames, batch_size * lattice.num_classes)
    out.index_add_(1, lattice.flat_index, values.reshape(num_frames, -1))
    return out.view(num_frames, batch_size, lattice.num_classes)

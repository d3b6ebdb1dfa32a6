"""Forced alignment: the single most probable CTC path (Viterbi, max-product) for each target."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ctcocr.ctc.inputs import Lengths, as_lengths, extended_targets, padded_targets
from ctcocr.ctc.targets import compute_dtype

NEG_INF = float("-inf")


class ViterbiAlignment(NamedTuple):
    """Best CTC path per sample."""

    labels: Tensor
    """(T, B) int64 label emitted at each frame (blank or a token); -1 past the input length and on
    every frame of an infeasible sample."""
    log_prob: Tensor
    """(B,) log-probability of the best path; -inf when no path exists."""
    token_spans: Tensor
    """(B, L_max, 2) int64 inclusive (start_frame, end_frame) of each target token; -1 for padding
    and for infeasible samples."""


def viterbi_align(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Lengths,
    target_lengths: Lengths,
    blank: int = 0,
) -> ViterbiAlignment:
    """Most probable alignment of each target, ending at its own last frame in state S-1 or S-2.

    Args:
        log_probs: (T, B, C) log-probabilities (scored in float32, float64 for float64 input).
        targets: padded (B, S) or concatenated (sum(target_lengths),) labels.
        input_lengths, target_lengths: (B,) tensors or sequences.
        blank: index of the blank symbol.

    Returns:
        :class:`ViterbiAlignment`. Loops over time only, vectorised over the batch and the states.
        Ties are broken towards staying in a state, then stepping by one.
    """
    num_frames, batch_size, _ = log_probs.shape
    device = log_probs.device
    input_lengths = as_lengths(input_lengths, batch_size, device)
    target_lengths = as_lengths(target_lengths, batch_size, device)
    if bool(((input_lengths < 0) | (input_lengths > num_frames)).any()):
        raise ValueError(
            f"input_lengths must lie in [0, {num_frames}], got {input_lengths.tolist()}"
        )
    labels = padded_targets(targets, target_lengths)
    ext = extended_targets(labels, blank)  # (B, S)
    num_states = ext.size(1)
    log_probs = log_probs.detach().to(compute_dtype(log_probs.dtype))

    states = torch.arange(num_states, device=device)
    state_valid = states < (2 * target_lengths + 1)[:, None]
    skip_allowed = (ext != blank) & (ext != _shift(ext, 2, blank)) & (states >= 2)
    emissions = log_probs.gather(2, ext.expand(num_frames, -1, -1))  # (T, B, S)
    emissions = emissions.masked_fill(~state_valid, NEG_INF)

    score = emissions[0].masked_fill(states >= 2, NEG_INF)  # (B, S), frozen after each input length
    score = score.masked_fill((input_lengths < 1)[:, None], NEG_INF)
    backpointers = torch.zeros(num_frames, batch_size, num_states, dtype=torch.uint8, device=device)
    for t in range(1, num_frames):
        skip = _shift(score, 2, NEG_INF).masked_fill(~skip_allowed, NEG_INF)
        best, backpointers[t] = torch.stack([score, _shift(score, 1, NEG_INF), skip]).max(0)
        score = torch.where((t < input_lengths)[:, None], best + emissions[t], score)

    ends = torch.stack([2 * target_lengths, (2 * target_lengths - 1).clamp(min=0)], dim=1)
    end_scores = score.gather(1, ends)
    end_scores[:, 1].masked_fill_(target_lengths == 0, NEG_INF)  # an empty target has one end state
    log_prob, end_choice = end_scores.max(1)
    feasible = log_prob > NEG_INF

    state = ends.gather(1, end_choice[:, None])[:, 0]
    path = torch.full((num_frames, batch_size), -1, dtype=torch.long, device=device)  # states
    for t in range(num_frames - 1, -1, -1):
        active = (t < input_lengths) & feasible
        path[t] = torch.where(active, state, -1)
        if t > 0:
            moved = state - backpointers[t].gather(1, state[:, None])[:, 0].long()
            state = torch.where(active, moved, state)

    emitted = ext.gather(1, path.clamp(min=0).T).T
    return ViterbiAlignment(
        labels=emitted.masked_fill(path < 0, -1),
        log_prob=log_prob,
        token_spans=_token_spans(path, labels.size(1)),
    )


def _shift(values: Tensor, steps: int, fill: float) -> Tensor:
    """(B, S) -> (B, S) moved right along the states by ``steps``, ``fill`` entering on the left."""
    return F.pad(values, (steps, 0), value=fill)[:, : values.size(1)]


def _token_spans(path: Tensor, max_len: int) -> Tensor:
    """State path (T, B) (-1 = no frame) -> inclusive frame spans (B, L_max, 2), -1 where unused."""
    num_frames, batch_size = path.shape
    is_token = (path >= 0) & (path % 2 == 1)
    token = torch.where(is_token, (path - 1) // 2, max_len).T  # column max_len collects the rest
    frames = torch.arange(num_frames, device=path.device).expand(batch_size, -1)
    start = torch.full((batch_size, max_len + 1), num_frames, dtype=torch.long, device=path.device)
    end = torch.full((batch_size, max_len + 1), -1, dtype=torch.long, device=path.device)
    start.scatter_reduce_(1, token, frames, reduce="amin")
    end.scatter_reduce_(1, token, frames, reduce="amax")
    spans = torch.stack([start[:, :max_len], end[:, :max_len]], dim=-1)
    return spans.masked_fill((end[:, :max_len] < 0)[..., None], -1)

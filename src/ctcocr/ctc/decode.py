"""Greedy (best-path) CTC decoding with the per-sample confidences built from the path."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ctcocr.ctc.inputs import Lengths, as_lengths
from ctcocr.ctc.targets import compute_dtype


class GreedyResult(NamedTuple):
    """Best-path decoding of a batch."""

    tokens: list[list[int]]
    """Decoded labels per sample (repeats collapsed, blanks dropped)."""
    frames: list[Tensor]
    """Per sample, (N_b,) int64 frame at which each kept token was emitted (first of its run)."""
    frame_scores: list[Tensor]
    """Per sample, (N_b,) max log-probability of the frames in ``frames``."""
    path_confidence: Tensor
    """(B,) probability of the greedy path: exp of the sum of the per-frame max log-probabilities
    over all valid frames."""
    mean_kept_confidence: Tensor
    """(B,) mean max probability of the frames that emitted a kept token; for an empty string, the
    mean max (blank) probability over all valid frames."""


def pad_tokens(
    tokens: list[list[int]], device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    """Token lists as CTC targets: padded (B, max(1, L_max)) int64 and lengths (B,) int64, e.g.
    for a decoded string's confidence ``exp(-ctc_loss(log_probs, *pad_tokens(tokens), ...))``."""
    sizes = [len(ids) for ids in tokens]
    padded = torch.zeros(len(sizes), max([1, *sizes]), dtype=torch.long, device=device)
    for b, ids in enumerate(tokens):
        padded[b, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return padded, torch.tensor(sizes, dtype=torch.long, device=device)


def greedy_decode(log_probs: Tensor, input_lengths: Lengths, blank: int = 0) -> GreedyResult:
    """Argmax per frame up to each input length, collapse repeats, drop blanks.

    Args:
        log_probs: (T, B, C) log-probabilities, any float dtype (confidences are computed in
            float32, float64 for float64 input).
        input_lengths: (B,) valid frames per sample, each in [1, T].
        blank: index of the blank symbol.

    Returns:
        :class:`GreedyResult`.
    """
    num_frames, batch_size, _ = log_probs.shape
    lengths = as_lengths(input_lengths, batch_size, log_probs.device)
    bad = ((lengths < 1) | (lengths > num_frames)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(
            f"input_lengths must lie in [1, {num_frames}]; "
            f"samples {bad} have {lengths[bad].tolist()}"
        )
    best, labels = log_probs.detach().to(compute_dtype(log_probs.dtype)).max(-1)  # (T, B)
    valid = torch.arange(num_frames, device=log_probs.device)[:, None] < lengths[None, :]
    new_label = torch.ones_like(valid)
    new_label[1:] = labels[1:] != labels[:-1]
    kept = valid & new_label & (labels != blank)

    path_log_prob = torch.where(valid, best, torch.zeros_like(best)).sum(0)
    counted = torch.where(kept.any(0, keepdim=True), kept, valid)  # empty string: its blank frames
    mean_kept = torch.where(counted, best.exp(), torch.zeros_like(best)).sum(0) / counted.sum(0)

    counts = kept.sum(0).tolist()
    kept_by_sample = kept.T  # (B, T): boolean indexing then walks sample by sample, frames in order
    frames = kept_by_sample.nonzero()[:, 1].split(counts)
    scores = best.T[kept_by_sample].split(counts)
    tokens = [chunk.tolist() for chunk in labels.T[kept_by_sample].split(counts)]
    return GreedyResult(tokens, list(frames), list(scores), path_log_prob.exp(), mean_kept)

"""Normalisation of the arguments shared by every function of :mod:`ctcocr.ctc`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

Lengths = Tensor | Sequence[int]


def as_lengths(lengths: Lengths, batch_size: int, device: torch.device) -> Tensor:
    """Lengths given as a tensor, list or tuple, int32 or int64 -> int64 tensor (B,) on ``device``."""
    out = torch.as_tensor(lengths, dtype=torch.long, device=device).reshape(-1)
    if out.numel() != batch_size:
        raise ValueError(f"expected {batch_size} lengths, got {out.numel()}")
    return out


def padded_targets(targets: Tensor, target_lengths: Tensor) -> Tensor:
    """Targets as padded (B, S) or concatenated (sum(target_lengths),) -> padded (B, L_max) int64.

    Entries past each sample's length are set to 0; they are never read as labels.
    """
    batch_size = target_lengths.numel()
    max_len = int(target_lengths.max()) if batch_size else 0
    if targets.dim() == 2:
        if targets.size(0) != batch_size:
            raise ValueError(f"padded targets have {targets.size(0)} rows for {batch_size} samples")
        if targets.size(1) < max_len:
            raise ValueError(f"padded targets have {targets.size(1)} columns, need {max_len}")
        out = targets[:, :max_len].long().to(target_lengths.device)
    elif targets.dim() == 1:
        total = int(target_lengths.sum())
        if targets.numel() < total:
            raise ValueError(f"concatenated targets hold {targets.numel()} labels, need {total}")
        out = torch.zeros(batch_size, max_len, dtype=torch.long, device=target_lengths.device)
        positions = torch.arange(max_len, device=target_lengths.device)
        valid = positions < target_lengths[:, None]
        out[valid] = targets[:total].long().to(target_lengths.device)
    else:
        raise ValueError(f"targets must be 1-D or 2-D, got shape {tuple(targets.shape)}")
    positions = torch.arange(max_len, device=out.device)
    return out.masked_fill(positions >= target_lengths[:, None], 0)


def extended_targets(padded: Tensor, blank: int) -> Tensor:
    """Padded labels (B, L) -> extended labels (B, 2L + 1): blank, l1, blank, l2, ..., lL, blank.

    Positions past a sample's own 2 * length + 1 hold padding labels and must be masked by callers.
    """
    batch_size, max_len = padded.shape
    ext = padded.new_full((batch_size, 2 * max_len + 1), blank)
    ext[:, 1::2] = padded
    return ext


def required_frames(padded: Tensor, target_lengths: Tensor) -> Tensor:
    """Fewest frames that can emit each target: its length plus its adjacent repeats. (B,) int64."""
    positions = torch.arange(1, max(padded.size(1), 1), device=padded.device)
    repeats = (padded[:, 1:] == padded[:, :-1]) & (positions < target_lengths[:, None])
    return target_lengths + repeats.sum(1)

"""Shared inputs and references for the CTC tests: random cases, and brute-force enumeration of
every frame labelling of tiny cases."""

from __future__ import annotations

import itertools
import math

import torch


def random_case(
    seed: int,
    frames: int,
    batch: int,
    classes: int,
    max_len: int,
    blank: int = 0,
    pin_first_sample: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits (T, B, C) float64, padded targets (B, max_len), input and target lengths (B,).

    Sample 0 always uses every frame; with ``pin_first_sample`` its target also has the full
    length and starts with a repeated label.
    """
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(frames, batch, classes, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, classes - 1, (batch, max_len), generator=gen)
    labels = labels + (labels >= blank).long()  # every class but blank
    if pin_first_sample:
        labels[0, 1] = labels[0, 0]
    target_lengths = torch.randint(0, max_len + 1, (batch,), generator=gen)
    if pin_first_sample:
        target_lengths[0] = max_len
    input_lengths = torch.randint(frames // 2, frames + 1, (batch,), generator=gen)
    input_lengths[0] = frames
    return logits, labels, input_lengths, target_lengths


def brute_force_nll(log_probs: torch.Tensor, target: list[int], blank: int) -> float:
    """-log sum over every frame labelling that collapses to ``target``; log_probs (T, C)."""
    frames, classes = log_probs.shape
    total = 0.0
    for path in itertools.product(range(classes), repeat=frames):
        collapsed = [k for i, k in enumerate(path) if k != blank and (i == 0 or path[i - 1] != k)]
        if collapsed == target:
            total += math.exp(sum(float(log_probs[t, k]) for t, k in enumerate(path)))
    return -math.log(total) if total > 0 else math.inf

"""Independent references for the CTC tests: enumerate every frame labelling of tiny cases."""

from __future__ import annotations

import itertools
import math

import torch


def brute_force_nll(log_probs: torch.Tensor, target: list[int], blank: int) -> float:
    """-log sum over every frame labelling that collapses to ``target``; log_probs (T, C)."""
    frames, classes = log_probs.shape
    total = 0.0
    for path in itertools.product(range(classes), repeat=frames):
        collapsed = [k for i, k in enumerate(path) if k != blank and (i == 0 or path[i - 1] != k)]
        if collapsed == target:
            total += math.exp(sum(float(log_probs[t, k]) for t, k in enumerate(path)))
    return -math.log(total) if total > 0 else math.inf

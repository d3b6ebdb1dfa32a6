"""Validation-time calibration statistics, logged by the LightningModule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from ctcocr.evaluation.metrics import N_BINS, _mean_finite_nll
from ctcocr.evaluation.scores import sequence_scores
from ctcocr.metrics import brier_score, expected_calibration_error
from ctcocr.metrics.frames import SUM_NAMES, frame_means, frame_sums
from ctcocr.recognition.confidence import sequence_nll


class CalibrationStatistics(Metric):
    """Accumulates string confidences, exact-match flags, ground-truth NLLs and frame sums over
    batches (gathered across processes under DDP).

    ``compute()`` returns ``ece`` and ``brier`` of the string confidence, ``nll`` (mean per line
    over samples that can emit their label) and the frame statistics of
    :mod:`ctcocr.metrics.frames`; NaN before any sample.
    """

    full_state_update = False
    higher_is_better = None
    is_differentiable = False

    def __init__(self, blank: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blank = blank
        for name in ("confidence", "correct", "nll"):
            self.add_state(name, default=[], dist_reduce_fx="cat")
        for name in SUM_NAMES:
            self.add_state(f"frame_{name}", default=torch.tensor(0.0, dtype=torch.float64),
                           dist_reduce_fx="sum")

    def update(self, log_probs: Tensor, lengths: Tensor, targets: Tensor, target_lengths: Tensor,
               predictions: Sequence[str], labels: Sequence[str]) -> None:
        """One batch: log_probs (T, B, C), lengths (B,), padded targets (B, L), target_lengths (B,),
        and the B decoded strings and labels."""
        log_probs = log_probs.detach().float().log_softmax(-1)
        scores = sequence_scores(log_probs, lengths, self.blank)
        self.confidence.append(scores.confidence.to(self.device))
        self.correct.append(torch.tensor([p == t for p, t in zip(predictions, labels)],
                                         dtype=torch.float64, device=self.device))
        nll = sequence_nll(log_probs, lengths, targets, target_lengths, self.blank)
        self.nll.append(nll.to(self.device))
        for name, value in frame_sums(log_probs, lengths, self.blank).items():
            setattr(self, f"frame_{name}", getattr(self, f"frame_{name}") + value.to(self.device))

    def compute(self) -> dict[str, float]:
        frames = frame_means({name: getattr(self, f"frame_{name}") for name in SUM_NAMES})
        if len(self.confidence) == 0:  # a list before any update, a tensor once gathered
            return {"ece": float("nan"), "brier": float("nan"), "nll": float("nan"), **frames}
        conf, correct = dim_zero_cat(self.confidence), dim_zero_cat(self.correct)
        return {"ece": expected_calibration_error(conf, correct, N_BINS),
                "brier": brier_score(conf, correct),
                "nll": _mean_finite_nll(dim_zero_cat(self.nll))[0], **frames}

"""Per-sample sequence scores of CTC outputs: decoded strings, their confidences and the
ground-truth NLL.

Three sequence confidences are computed for every sample (``log_probs`` (T, B, C) of one batch):

- ``confidence``: ``exp(-CTC(decoded string))``, the model's probability of the string it outputs,
  summed over all its alignments. This one feeds the calibration metrics (ECE, MCE, Brier, AUROC)
  and temperature scaling.
- ``path_confidence``: the product of the greedy path's frame maxima (one alignment only).
- ``kept_confidence``: the mean of the frame maxima of the frames that emitted a kept character.

The other two are reported beside it (``ece_path``, ``ece_kept``, ``auroc_path``, ``auroc_kept``).
Correctness is the exact (case-sensitive) string match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor

from ctcocr.ctc.decode import greedy_decode
from ctcocr.recognition.confidence import string_confidence

if TYPE_CHECKING:
    from ctcocr.recognition.decoding import TextDecoder


@dataclass(frozen=True)
class SequenceScores:
    """Decoded strings of a batch with their three confidences, each (B,) float64 on the CPU."""

    tokens: list[list[int]]
    confidence: Tensor
    path_confidence: Tensor
    kept_confidence: Tensor


def sequence_scores(log_probs: Tensor, lengths: Tensor, blank: int = 0,
                    decoder: TextDecoder | None = None) -> SequenceScores:
    """Decoded strings (greedy, or ``decoder``'s) and their three confidences (see the module
    docstring) for (T, B, C); the path and kept confidences are always the greedy path's."""
    greedy = greedy_decode(log_probs, lengths, blank)
    tokens = greedy.tokens if decoder is None else decoder(log_probs, lengths).tokens
    return SequenceScores(
        tokens=tokens,
        confidence=string_confidence(log_probs, lengths, tokens, blank),
        path_confidence=greedy.path_confidence.double().cpu(),
        kept_confidence=greedy.mean_kept_confidence.double().cpu(),
    )

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

import torch
import torch.nn.functional as F
from torch import Tensor

from ctcocr.ctc.decode import greedy_decode, pad_tokens

if TYPE_CHECKING:
    from ctcocr.decoding import TextDecoder


@dataclass(frozen=True)
class SequenceScores:
    """Decoded strings of a batch with their three confidences, each (B,) float64 on the CPU."""

    tokens: list[list[int]]
    confidence: Tensor
    path_confidence: Tensor
    kept_confidence: Tensor


def sequence_nll(log_probs: Tensor, lengths: Tensor, targets: Tensor, target_lengths: Tensor,
                 blank: int = 0) -> Tensor:
    """-log P(target | image) summed over alignments, per sample (B,) float64; +inf where the
    target cannot be emitted in its frames.

    log_probs: (T, B, C) log-probabilities; lengths: (B,); targets: padded (B, L);
    target_lengths: (B,).
    """
    return F.ctc_loss(log_probs.detach().double(), targets.long(), lengths.long(),
                      target_lengths.long(), blank=blank, reduction="none",
                      zero_infinity=False).cpu()


def string_confidence(log_probs: Tensor, lengths: Tensor, tokens: list[list[int]],
                      blank: int = 0) -> Tensor:
    """``exp(-CTC(string))`` of each decoded string, (B,) float64: its probability summed over
    all its alignments. log_probs (T, B, C), lengths (B,)."""
    decoded, decoded_lengths = pad_tokens(tokens, log_probs.device)
    return torch.exp(-sequence_nll(log_probs, lengths, decoded, decoded_lengths, blank))


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

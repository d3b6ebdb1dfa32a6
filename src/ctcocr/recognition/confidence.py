"""The one sequence confidence of every command: P(text | image) summed over all alignments."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ctcocr.ctc.decode import pad_tokens


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

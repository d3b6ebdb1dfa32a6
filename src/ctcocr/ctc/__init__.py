"""The CTC toolkit in plain PyTorch (no Lightning or Hydra): loss, alignment, decoding.

Every function takes CTC's argument order: ``log_probs`` (T, B, C), ``targets`` padded (B, S) or
concatenated, ``input_lengths`` (B,), ``target_lengths`` (B,), ``blank``.
"""

from ctcocr.ctc.align import ViterbiAlignment, viterbi_align
from ctcocr.ctc.decode import GreedyResult, greedy_decode
from ctcocr.ctc.loss import ctc_loss
from ctcocr.ctc.targets import alignment_targets

__all__ = [
    "GreedyResult",
    "ViterbiAlignment",
    "alignment_targets",
    "ctc_loss",
    "greedy_decode",
    "viterbi_align",
]

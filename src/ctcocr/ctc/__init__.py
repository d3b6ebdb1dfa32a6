"""The CTC toolkit in plain PyTorch (no Lightning or Hydra): loss, alignment, decoding, beam search.

Every function takes CTC's argument order: ``log_probs`` (T, B, C), ``targets`` padded (B, S) or
concatenated, ``input_lengths`` (B,), ``target_lengths`` (B,), ``blank``.
"""

from ctcocr.ctc.align import ViterbiAlignment, viterbi_align
from ctcocr.ctc.beam import BeamSearchResult, Hypothesis, prefix_beam_search
from ctcocr.ctc.decode import GreedyResult, greedy_decode, pad_tokens
from ctcocr.ctc.inputs import required_frames
from ctcocr.ctc.lexicon import CharNgramPrior, Lexicon, encode_words, read_words
from ctcocr.ctc.loss import ctc_loss
from ctcocr.ctc.targets import alignment_targets

__all__ = [
    "BeamSearchResult",
    "CharNgramPrior",
    "GreedyResult",
    "Hypothesis",
    "Lexicon",
    "ViterbiAlignment",
    "alignment_targets",
    "ctc_loss",
    "encode_words",
    "greedy_decode",
    "pad_tokens",
    "prefix_beam_search",
    "read_words",
    "required_frames",
    "viterbi_align",
]

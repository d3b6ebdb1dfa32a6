"""From per-frame log-probabilities to text: greedy or prefix beam search (optionally with a
lexicon and a character n-gram prior), and each character's horizontal span in the image."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from ctcocr.ctc import (
    CharNgramPrior,
    Lexicon,
    greedy_decode,
    pad_tokens,
    prefix_beam_search,
    read_words,
    viterbi_align,
)
from ctcocr.data.charset import Charset
from ctcocr.data.policy import DatasetError


class Decoded(NamedTuple):
    """Decoded strings of a batch."""

    texts: list[str]
    tokens: list[list[int]]
    confidences: Tensor
    """(B,) greedy: product of the best path's frame maxima; beam: P(text | image) summed over
    all alignments, exp(-CTC(text))."""


class TextDecoder:
    """Greedy best-path decoding, or CTC prefix beam search with an optional word list.

    Args:
        charset: the model's classes.
        kind: ``"greedy"`` or ``"beam"``.
        beam_width: hypotheses kept per frame (beam search).
        lexicon: a word-list file (one word per line); every output word must be in it, with a
            fallback to the unconstrained result when nothing fits. Words the charset cannot
            spell are skipped.
        prior_weight: weight of a character trigram prior estimated from the word list (0: none).
    """

    def __init__(
        self,
        charset: Charset,
        kind: Literal["greedy", "beam"] = "greedy",
        beam_width: int = 10,
        lexicon: str | None = None,
        prior_weight: float = 0.0,
    ):
        if kind not in ("greedy", "beam"):
            raise ValueError(f"decoder kind must be 'greedy' or 'beam', got {kind!r}")
        if kind == "greedy" and (lexicon or prior_weight):
            raise ValueError("a lexicon or prior needs the beam decoder (decoder.kind=beam)")
        self.charset, self.kind, self.beam_width = charset, kind, beam_width
        self.prior_weight = prior_weight
        self.lexicon = self.prior = None
        if lexicon:
            if not Path(lexicon).is_file():
                raise DatasetError(f"lexicon not found: {lexicon}")
            words = read_words(lexicon, charset.encode, skip_unknown=True)
            space = charset.encode(" ")[0] if " " in charset.characters else None
            self.lexicon = Lexicon(words, space=space)
            if prior_weight:
                self.prior = CharNgramPrior(words, charset.num_classes, order=3, space=space)

    def __call__(self, log_probs: Tensor, lengths: Tensor) -> Decoded:
        """Log-probabilities (T, B, C) and frames (B,) -> texts, token ids and confidences."""
        if self.kind == "greedy":
            result = greedy_decode(log_probs, lengths, self.charset.blank)
            tokens, confidences = result.tokens, result.path_confidence
        else:
            beams = prefix_beam_search(
                log_probs,
                lengths,
                blank=self.charset.blank,
                beam_width=self.beam_width,
                lexicon=self.lexicon,
                prior=self.prior,
                prior_weight=self.prior_weight,
            )
            tokens = beams.tokens
            confidences = torch.tensor([math.exp(h[0].log_prob) for h in beams.hypotheses])
        return Decoded([self.charset.decode(t) for t in tokens], tokens, confidences)


def character_spans(
    log_probs: Tensor, lengths: Tensor, tokens: list[list[int]], widths: Tensor
) -> list[list[tuple[float, float]]]:
    """Each decoded character's (x_start, x_end) in pixels of the network's input, from the
    Viterbi alignment of the decoded string. log_probs (T, B, C), lengths and widths (B,)."""
    targets, target_lengths = pad_tokens(tokens)
    spans = viterbi_align(
        log_probs.float().cpu(), targets, lengths.cpu(), target_lengths
    ).token_spans
    pixels_per_frame = widths.cpu().double() / lengths.cpu().clamp_min(1).double()
    return [
        [
            (float(start * scale), float((end + 1) * scale))
            for start, end in spans[row, :count].tolist()
        ]
        for row, (count, scale) in enumerate(
            zip(target_lengths.tolist(), pixels_per_frame.tolist())
        )
    ]

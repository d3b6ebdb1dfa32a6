"""From per-frame log-probabilities to text: greedy or prefix beam search (optionally with a
lexicon and a character n-gram prior), and each character's horizontal span in the image."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

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
from ctcocr.data.errors import DatasetError
from ctcocr.recognition.confidence import string_confidence


class Decoded(NamedTuple):
    """Decoded strings of a batch."""

    texts: list[str]
    tokens: list[list[int]]
    confidences: Tensor
    """(B,) float64: P(text | image) summed over all alignments, exp(-CTC(text)), whatever the
    decoder (:func:`~ctcocr.recognition.confidence.string_confidence`)."""


#: Default ``oov_penalty`` of :class:`TextDecoder` (nats), measured with
#: ``scripts/compare_decoders.py`` (see ``configs/decoder/beam.yaml``).
DEFAULT_OOV_PENALTY = 4.0


class TextDecoder:
    """Greedy best-path decoding, or CTC prefix beam search with an optional word list.

    With a lexicon, each output word (space-separated part) is either a lexicon word or an
    out-of-vocabulary (OOV) word that costs ``oov_penalty`` nats of score: the search keeps the
    model's own reading of a word unless a lexicon word is at least ``exp(-oov_penalty)`` times
    as probable (``log P(lexicon word) >= log P(free reading) - oov_penalty``), so numbers, names
    and punctuated words survive while near-misses of dictionary words are corrected (see
    :mod:`ctcocr.ctc.beam`).

    Args:
        charset: the model's classes.
        kind: ``"greedy"`` or ``"beam"``.
        beam_width: hypotheses kept per frame (beam search), >= 1.
        lexicon: a word-list file (one word per line). Words the charset cannot spell are skipped.
        prior_weight: weight (>= 0) of a character trigram prior estimated from the lexicon's
            words (0: none); needs a lexicon.
        oov_penalty: with a lexicon, the cost in nats (>= 0) of an output word not in it, or
            ``None`` to allow lexicon words only (with a fallback to the unconstrained result when
            nothing fits). No effect without a lexicon.

    Raises:
        ValueError: for options that cannot apply (a lexicon or prior with greedy decoding, a
            prior without a lexicon) and for out-of-range values.
    """

    def __init__(
        self,
        charset: Charset,
        kind: Literal["greedy", "beam"] = "greedy",
        beam_width: int = 10,
        lexicon: str | None = None,
        prior_weight: float = 0.0,
        oov_penalty: float | None = DEFAULT_OOV_PENALTY,
    ):
        if kind not in ("greedy", "beam"):
            raise ValueError(f"decoder kind must be 'greedy' or 'beam', got {kind!r}")
        if kind == "greedy" and (lexicon or prior_weight):
            raise ValueError("a lexicon or prior needs the beam decoder (decoder.kind=beam)")
        if beam_width < 1:
            raise ValueError(f"beam_width must be >= 1, got {beam_width}")
        if not prior_weight >= 0:
            raise ValueError(f"prior_weight must be >= 0, got {prior_weight}")
        if oov_penalty is not None and not oov_penalty >= 0:
            raise ValueError(f"oov_penalty must be >= 0 or null, got {oov_penalty}")
        if prior_weight and not lexicon:
            raise ValueError("prior_weight needs a lexicon: the prior is estimated from its words "
                             "(set decoder.lexicon or prior_weight=0)")
        self.charset, self.kind, self.beam_width = charset, kind, beam_width
        self.prior_weight, self.oov_penalty = prior_weight, oov_penalty
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
            tokens = greedy_decode(log_probs, lengths, self.charset.blank).tokens
        else:
            beams = prefix_beam_search(
                log_probs,
                lengths,
                blank=self.charset.blank,
                beam_width=self.beam_width,
                lexicon=self.lexicon,
                prior=self.prior,
                prior_weight=self.prior_weight,
                oov_penalty=self.oov_penalty,
            )
            tokens = beams.tokens
        confidences = string_confidence(log_probs, lengths, tokens, self.charset.blank)
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

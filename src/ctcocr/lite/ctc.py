"""CTC decoding in NumPy for the torch-free path: greedy best path, the sequence confidence
``exp(-CTC(decoded string))`` (a float64 forward pass) and each character's frame span (Viterbi).

The functions take a batch's log-probabilities ``(T, B, C)`` and each sample's valid frames
``(B,)``; the blank is class 0. They loop over time only, vectorised over the batch and the
states, and follow :mod:`ctcocr.ctc` and :mod:`ctcocr.recognition.confidence`, the PyTorch
implementations that training and evaluation use (the tests compare both).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BLANK = 0


def greedy_tokens(log_probs: np.ndarray, lengths: np.ndarray) -> list[list[int]]:
    """Best path per sample: argmax per valid frame, repeats collapsed, blanks dropped.
    log_probs (T, B, C), lengths (B,)."""
    labels = log_probs.argmax(-1).T  # (B, T)
    new = np.ones(labels.shape, dtype=bool)
    new[:, 1:] = labels[:, 1:] != labels[:, :-1]
    kept = new & (labels != BLANK)
    return [row[:length][keep[:length]].tolist()
            for row, keep, length in zip(labels, kept, np.asarray(lengths).tolist())]


def _lattice(values: np.ndarray, tokens: Sequence[Sequence[int]], padding: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The states of each sample's blank-interleaved target (blank, t1, blank, ..., tL, blank):
    ``values`` (T, B, C) (log-probabilities or probabilities) gathered per state (T, B, S), with
    ``padding`` on the states past a sample's target, the number of states (B,), and where a
    state may be entered from two states back (B, S)."""
    num_states = 2 * np.array([len(ids) for ids in tokens], dtype=np.int64) + 1
    extended = np.full((len(tokens), int(num_states.max(initial=1))), BLANK, dtype=np.int64)
    for row, ids in enumerate(tokens):
        extended[row, 1 : 2 * len(ids) : 2] = ids
    skip = np.zeros(extended.shape, dtype=bool)
    skip[:, 2:] = (extended[:, 2:] != BLANK) & (extended[:, 2:] != extended[:, :-2])
    rows = np.arange(len(tokens))[:, None]
    emissions = values[:, rows, extended]  # (T, B, S)
    emissions[:, np.arange(extended.shape[1]) >= num_states[:, None]] = padding
    return emissions, num_states, skip


def _shifted(values: np.ndarray, steps: int) -> np.ndarray:
    """(B, S) moved right along the states by ``steps``, -inf entering on the left."""
    shifted = np.full_like(values, -np.inf)
    shifted[:, steps:] = values[:, :-steps]
    return shifted


def _end_scores(scores: np.ndarray, num_states: np.ndarray, missing: float = -np.inf
                ) -> np.ndarray:
    """Scores (B, S) at each sample's two end states (B, 2): S_b - 1, then S_b - 2 (``missing``
    for an empty target, which has one)."""
    rows = np.arange(scores.shape[0])
    last = scores[rows, num_states - 1]
    before = np.where(num_states > 1, scores[rows, np.maximum(num_states - 2, 0)], missing)
    return np.stack([last, before], axis=1)


#: Frames between rescalings of the forward variables in :func:`sequence_nll`.
RESCALE_EVERY = 4


def _forward_nll(probs: np.ndarray, num_states: np.ndarray, skip: np.ndarray,
                 lengths: np.ndarray, every: int) -> tuple[np.ndarray, np.ndarray]:
    """The CTC forward recursion on probabilities (T, S, B) (states first, so that the shifts
    along the states move whole rows), rescaled by each sample's largest state every ``every``
    frames and at its last frame (the logarithms of the scales add up) -> (-log P per sample
    (B,), whether a sample's states all underflowed to 0 (B,)). skip (B, S)."""
    num_frames, width, batch_size = probs.shape
    alpha = np.zeros((width, batch_size))
    alpha[:2] = probs[0, :2]
    skip_weight = np.ascontiguousarray(skip[:, 2:].T, dtype=np.float64)
    step, skipped = np.empty_like(alpha), np.empty_like(alpha[2:])
    log_scale, nll = np.zeros(batch_size), np.full(batch_size, np.inf)
    underflow = np.zeros(batch_size, dtype=bool)
    samples = np.arange(batch_size)
    ending = {t: samples[lengths - 1 == t] for t in np.unique(lengths - 1).tolist()}
    for t in range(num_frames):
        if t:
            step[0] = alpha[0]
            np.add(alpha[1:], alpha[:-1], out=step[1:])
            np.multiply(skip_weight, alpha[:-2], out=skipped)
            step[2:] += skipped
            np.multiply(step, probs[t], out=alpha)
        done = ending.get(t)
        if t % every == every - 1 or done is not None:
            scale = alpha.max(axis=0)
            underflow |= (scale == 0) & (t < lengths)
            scale[scale == 0] = 1.0
            alpha /= scale
            log_scale += np.log(scale)
        if done is not None:
            ends = _end_scores(alpha[:, done].T, num_states[done], missing=0.0).sum(axis=1)
            with np.errstate(divide="ignore"):
                nll[done] = -(np.log(ends) + log_scale[done])
    return nll, underflow


def sequence_nll(log_probs: np.ndarray, lengths: np.ndarray,
                 tokens: Sequence[Sequence[int]]) -> np.ndarray:
    """-log P(tokens | image) summed over all CTC alignments, per sample (B,) float64, read at
    each sample's last valid frame; +inf where the tokens cannot be emitted in the frames.
    log_probs (T, B, C), lengths (B,).

    The forward recursion runs on probabilities rescaled every :data:`RESCALE_EVERY` frames,
    which costs less than log-space sums in NumPy; a sample whose states all underflow between
    two rescalings (a string far less likely than its frames' best paths) is run again with a
    rescaling at every frame, where a state below 1e-308 of the frame's largest adds nothing
    visible to the total.
    """
    probs, num_states, skip = _lattice(np.exp(log_probs, dtype=np.float64), tokens, 0.0)
    probs = np.ascontiguousarray(probs.transpose(0, 2, 1))  # (T, S, B)
    lengths = np.asarray(lengths)
    nll, underflow = _forward_nll(probs, num_states, skip, lengths, RESCALE_EVERY)
    if underflow.any():
        again = np.flatnonzero(underflow)
        nll[again] = _forward_nll(np.ascontiguousarray(probs[:, :, again]), num_states[again],
                                  skip[again], lengths[again], every=1)[0]
    return nll


def string_confidences(log_probs: np.ndarray, lengths: np.ndarray,
                       tokens: Sequence[Sequence[int]]) -> np.ndarray:
    """``exp(-CTC(tokens))`` per sample (B,) float64: the probability of each string summed
    over its alignments, the confidence of every ctcocr command."""
    return np.exp(-sequence_nll(log_probs, lengths, tokens))


def token_spans(log_probs: np.ndarray, lengths: np.ndarray, tokens: Sequence[Sequence[int]]
                ) -> list[list[tuple[int, int]]]:
    """Inclusive (first, last) frame of each token on its sample's most probable alignment
    (Viterbi, scored in float32 like :func:`ctcocr.ctc.viterbi_align`; ties go to staying in a
    state, then to a step by one, and to the last state at the end); (-1, -1) for the tokens of
    a sample none of whose alignments fits its frames. log_probs (T, B, C), lengths (B,)."""
    emissions, num_states, skip = _lattice(np.asarray(log_probs, dtype=np.float32), tokens,
                                           -np.inf)
    lengths = np.asarray(lengths)
    num_frames, batch_size, width = emissions.shape
    score = emissions[0].copy()
    score[:, 2:] = -np.inf
    moves = np.zeros((num_frames, batch_size, width), dtype=np.int64)
    for t in range(1, num_frames):
        candidates = np.stack([score, _shifted(score, 1), np.where(skip, _shifted(score, 2),
                                                                    np.float32(-np.inf))])
        moves[t] = candidates.argmax(0)
        best = np.take_along_axis(candidates, moves[t][None], 0)[0] + emissions[t]
        score = np.where((t < lengths)[:, None], best, score)
    ends = _end_scores(score, num_states)
    choice = ends.argmax(1)
    states = num_states - 1 - choice
    spans = []
    for row, ids in enumerate(tokens):
        if ends[row, choice[row]] == -np.inf:
            spans.append([(-1, -1)] * len(ids))
            continue
        first, last = [num_frames] * len(ids), [-1] * len(ids)
        state = int(states[row])
        for t in range(int(lengths[row]) - 1, -1, -1):
            if state % 2:
                token = (state - 1) // 2
                first[token], last[token] = min(first[token], t), max(last[token], t)
            state -= int(moves[t, row, state])
        spans.append(list(zip(first, last)))
    return spans

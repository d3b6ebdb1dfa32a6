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


def _lattice(log_probs: np.ndarray, tokens: Sequence[Sequence[int]], dtype: type
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The states of each sample's blank-interleaved target (blank, t1, blank, ..., tL, blank):
    emissions (T, B, S) in ``dtype`` (-inf on padding states), the number of states (B,), and
    where a state may be entered from two states back (B, S)."""
    num_states = 2 * np.array([len(ids) for ids in tokens], dtype=np.int64) + 1
    extended = np.full((len(tokens), int(num_states.max(initial=1))), BLANK, dtype=np.int64)
    for row, ids in enumerate(tokens):
        extended[row, 1 : 2 * len(ids) : 2] = ids
    skip = np.zeros(extended.shape, dtype=bool)
    skip[:, 2:] = (extended[:, 2:] != BLANK) & (extended[:, 2:] != extended[:, :-2])
    rows = np.arange(len(tokens))[:, None]
    emissions = log_probs[:, rows, extended].astype(dtype)  # (T, B, S)
    padding = np.arange(extended.shape[1]) >= num_states[:, None]
    emissions[:, padding] = -np.inf
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


def sequence_nll(log_probs: np.ndarray, lengths: np.ndarray,
                 tokens: Sequence[Sequence[int]]) -> np.ndarray:
    """-log P(tokens | image) summed over all CTC alignments, per sample (B,) float64, read at
    each sample's last valid frame; +inf where the tokens cannot be emitted in the frames.
    log_probs (T, B, C), lengths (B,).

    The forward recursion runs on probabilities, each frame's rescaled by its largest (the
    logarithms of the scales add up), which costs less than log-space sums in NumPy; a state
    below 1e-308 of the frame's largest underflows to 0 and adds nothing visible to the total.
    """
    emissions, num_states, skip = _lattice(log_probs, tokens, np.float64)
    probs = np.exp(emissions)
    lengths = np.asarray(lengths)
    skip_weight = skip[:, 2:].astype(np.float64)
    alpha = np.zeros(probs.shape[1:])
    alpha[:, :2] = probs[0, :, :2]
    log_scale = np.zeros(alpha.shape[0])
    step = np.empty_like(alpha)
    for t in range(1, probs.shape[0]):
        np.copyto(step, alpha)
        step[:, 1:] += alpha[:, :-1]
        step[:, 2:] += skip_weight * alpha[:, :-2]
        step *= probs[t]
        scale = step.max(axis=1)
        scale[scale == 0] = 1.0  # nothing reachable: the total stays 0
        step /= scale[:, None]
        active = t < lengths
        alpha = np.where(active[:, None], step, alpha)
        log_scale += np.where(active, np.log(scale), 0.0)
    with np.errstate(divide="ignore"):
        return -(np.log(_end_scores(alpha, num_states, missing=0.0).sum(axis=1)) + log_scale)


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
    emissions, num_states, skip = _lattice(log_probs, tokens, np.float32)
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

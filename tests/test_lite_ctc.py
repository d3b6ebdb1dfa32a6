"""The NumPy CTC decoding of the torch-free path against the PyTorch implementations training and
evaluation use: greedy strings, exp(-CTC) confidences and Viterbi character spans."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ctcocr.ctc import greedy_decode, pad_tokens, viterbi_align
from ctcocr.lite.ctc import greedy_tokens, sequence_nll, string_confidences, token_spans
from ctcocr.recognition.confidence import sequence_nll as torch_sequence_nll


def random_log_probs(frames: int, batch: int, classes: int, seed: int, peak: float = 4.0
                     ) -> torch.Tensor:
    """(T, B, C) log-probabilities, peaky enough that decoding gives real strings."""
    generator = torch.Generator().manual_seed(seed)
    return torch.log_softmax(torch.randn(frames, batch, classes, generator=generator) * peak, -1)


@pytest.mark.parametrize("seed", range(4))
def test_greedy_tokens_match_pytorch(seed):
    log_probs = random_log_probs(30, 5, 6, seed)
    lengths = torch.tensor([30, 1, 17, 29, 8])
    expected = greedy_decode(log_probs, lengths).tokens
    assert greedy_tokens(log_probs.numpy(), lengths.numpy()) == expected
    assert any(expected)


@pytest.mark.parametrize("seed", range(4))
def test_confidence_of_the_decoded_and_other_strings_matches_torch_ctc(seed):
    log_probs = random_log_probs(25, 6, 5, seed, peak=1.5)
    lengths = torch.tensor([25, 25, 12, 3, 20, 6])
    tokens = greedy_decode(log_probs, lengths).tokens
    # beside the decoded strings: repeats (need a blank between), the empty string, one that
    # cannot fit in its frames (+inf), a long one
    tokens[1] = [2, 2, 3, 3, 1]
    tokens[3] = [1, 1, 1]
    tokens[4] = []
    tokens[5] = [1, 2, 3, 4, 1, 2]
    expected = torch_sequence_nll(log_probs, lengths, *pad_tokens(tokens)).numpy()
    nll = sequence_nll(log_probs.numpy(), lengths.numpy(), tokens)
    assert math.isinf(nll[3]) and math.isinf(expected[3])
    finite = np.isfinite(expected)
    np.testing.assert_allclose(nll[finite], expected[finite], rtol=1e-10, atol=1e-10)
    confidences = string_confidences(log_probs.numpy(), lengths.numpy(), tokens)
    np.testing.assert_allclose(confidences, np.exp(-expected), rtol=1e-10, atol=1e-12)
    assert confidences[3] == 0.0


def test_confidence_of_a_long_improbable_line_is_exact_far_below_the_float64_range():
    # 600 frames of nearly flat scores over 96 classes: P(string) ~ 96^-600 = 1e-1189, which no
    # float64 holds unscaled
    log_probs = random_log_probs(600, 3, 96, seed=5, peak=0.3)
    lengths = torch.tensor([600, 431, 300])
    tokens = [[7, 7, 3] * 60, [int(i) % 95 + 1 for i in range(200)], [1, 2, 3] * 20]
    expected = torch_sequence_nll(log_probs, lengths, *pad_tokens(tokens)).numpy()
    assert expected.min() > 709  # exp(-nll) underflows float64 for every sample
    np.testing.assert_allclose(sequence_nll(log_probs.numpy(), lengths.numpy(), tokens), expected,
                               rtol=1e-10)


def test_confidence_of_a_string_whose_frames_underflow_between_rescalings_is_exact():
    # frames sure of a class the string lacks give every state of its lattice ~e^-300 a frame:
    # a few in a row underflow float64 between two rescalings, so that sample runs again with
    # a rescaling at every frame
    log_probs = random_log_probs(40, 3, 4, seed=3, peak=1.0)
    log_probs[10:30, 0] = torch.log_softmax(torch.tensor([0.0, 0.0, 0.0, 300.0]), -1)
    lengths = torch.tensor([40, 40, 33])
    tokens = [[1, 2, 1], [1, 2], [3, 1, 2, 1]]
    expected = torch_sequence_nll(log_probs, lengths, *pad_tokens(tokens)).numpy()
    assert expected[0] > 3000 and np.isfinite(expected).all()
    np.testing.assert_allclose(sequence_nll(log_probs.numpy(), lengths.numpy(), tokens), expected,
                               rtol=1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_token_spans_match_the_viterbi_alignment(seed):
    log_probs = random_log_probs(40, 5, 7, seed)
    lengths = torch.tensor([40, 33, 9, 2, 21])
    tokens = greedy_decode(log_probs, lengths).tokens
    tokens[3] = [1, 1, 1]  # infeasible in 2 frames: no spans
    targets, target_lengths = pad_tokens(tokens)
    alignment = viterbi_align(log_probs, targets, lengths, target_lengths)
    spans = token_spans(log_probs.numpy(), lengths.numpy(), tokens)
    for row, ids in enumerate(tokens):
        expected = [tuple(span) for span in alignment.token_spans[row, : len(ids)].tolist()]
        assert spans[row] == expected
    assert spans[3] == [(-1, -1)] * 3
    assert sum(map(len, tokens)) > 5


def test_spans_of_a_tied_alignment_follow_the_pytorch_tie_break():
    """Uniform log-probs: every alignment ties; both stay in a state as long as they can."""
    log_probs = torch.full((6, 1, 3), math.log(1 / 3))
    tokens = [[1, 2]]
    targets, target_lengths = pad_tokens(tokens)
    alignment = viterbi_align(log_probs, targets, torch.tensor([6]), target_lengths)
    expected = [tuple(span) for span in alignment.token_spans[0].tolist()]
    assert token_spans(log_probs.numpy(), np.array([6]), tokens) == [expected]

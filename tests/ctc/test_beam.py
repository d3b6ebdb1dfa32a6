"""prefix_beam_search against brute force over all alignments of tiny cases (float64)."""

from __future__ import annotations

import itertools
import logging
import math
from collections import Counter, defaultdict

import pytest
import torch
import torch.nn.functional as F

from ctcocr.ctc.beam import prefix_beam_search
from ctcocr.ctc.decode import greedy_decode
from ctcocr.ctc.lexicon import CharNgramPrior, Lexicon, encode_words, read_words
from ctcocr.data.charset import Charset

BLANK = 0
FULL = {"prune_top_k": None, "prune_log_prob": None}


def random_log_probs(num_frames: int, batch: int, num_classes: int, seed: int, scale: float = 1.5):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_frames, batch, num_classes, generator=generator, dtype=torch.float64)
    return (scale * logits).log_softmax(-1)


def brute_force(log_probs: torch.Tensor, blank: int = BLANK) -> dict[tuple[int, ...], float]:
    """(T, C) log-probs of one sample -> log P(string) for every string, by enumerating all C^T
    alignments, collapsing each and summing the probabilities per string."""
    num_frames, num_classes = log_probs.shape
    probs = log_probs.exp().tolist()
    sums: dict[tuple[int, ...], list[float]] = defaultdict(list)
    for path in itertools.product(range(num_classes), repeat=num_frames):
        collapsed = [c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1])]
        sums[tuple(collapsed)].append(math.prod(probs[t][c] for t, c in enumerate(path)))
    return {string: math.log(math.fsum(terms)) for string, terms in sums.items()}


def ranked(scores: dict[tuple[int, ...], float]) -> list[tuple[tuple[int, ...], float]]:
    return sorted(scores.items(), key=lambda item: item[1], reverse=True)


def assert_matches(hypotheses, expected, tol=1e-9):
    assert [tuple(h.tokens) for h in hypotheses] == [s for s, _ in expected]
    for hyp, (_, value) in zip(hypotheses, expected):
        assert hyp.log_prob == pytest.approx(value, abs=tol)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("num_frames", "num_classes"), [(1, 3), (3, 3), (5, 3), (4, 2)])
def test_full_search_returns_the_exact_top_n(seed, num_frames, num_classes):
    log_probs = random_log_probs(num_frames, 2, num_classes, seed)
    lengths = [num_frames, max(1, num_frames - 2)]
    result = prefix_beam_search(log_probs, lengths, beam_width=64, top_n=4, **FULL)
    for b, length in enumerate(lengths):
        expected = ranked(brute_force(log_probs[:length, b]))[:4]
        assert_matches(result.hypotheses[b], expected)
        assert result.lexicon_fallback[b] is False


def test_pruned_search_still_reports_exact_log_probs():
    log_probs = random_log_probs(6, 3, 4, seed=7, scale=1.0)
    result = prefix_beam_search(log_probs, [6, 6, 5], beam_width=3, top_n=3, prune_top_k=2)
    for b, length in enumerate([6, 6, 5]):
        exact = brute_force(log_probs[:length, b])
        for hyp in result.hypotheses[b]:
            assert hyp.log_prob == pytest.approx(exact[tuple(hyp.tokens)], abs=1e-9)
        assert [h.score for h in result.hypotheses[b]] == sorted(
            (h.score for h in result.hypotheses[b]), reverse=True)


def test_log_probs_equal_minus_builtin_ctc_loss():
    log_probs = random_log_probs(20, 5, 7, seed=3)
    lengths = torch.tensor([20, 17, 9, 20, 1])
    result = prefix_beam_search(log_probs, lengths, beam_width=8, top_n=3)
    for b in range(5):
        for hyp in result.hypotheses[b]:
            target = torch.tensor([hyp.tokens], dtype=torch.long).reshape(1, -1)
            loss = F.ctc_loss(log_probs[:, b : b + 1], target, lengths[b : b + 1],
                              torch.tensor([len(hyp.tokens)]), blank=BLANK, reduction="none")
            assert hyp.log_prob == pytest.approx(-loss.item(), abs=1e-9)


def test_equals_greedy_decoding_on_peaky_frames():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 6, (30, 8), generator=generator)
    logits = 12.0 * F.one_hot(labels, 6).double() + 0.3 * torch.randn(30, 8, 6, generator=generator,
                                                                      dtype=torch.float64)
    log_probs = logits.log_softmax(-1)
    lengths = torch.tensor([30, 25, 30, 3, 12, 30, 1, 29])
    assert prefix_beam_search(log_probs, lengths).tokens == greedy_decode(log_probs, lengths).tokens


def test_input_lengths_ignore_the_padded_frames():
    log_probs = random_log_probs(7, 3, 4, seed=11)
    log_probs[4:, 1] = torch.tensor([-30.0, 0.0, -30.0, -30.0], dtype=torch.float64)  # garbage
    result = prefix_beam_search(log_probs, [7, 4, 2], top_n=3)
    for b, length in enumerate([7, 4, 2]):
        alone = prefix_beam_search(log_probs[:length, b : b + 1], [length], top_n=3)
        assert result.hypotheses[b] == alone.hypotheses[0]


def test_lexicon_picks_the_most_probable_word():
    for seed in range(6):
        log_probs = random_log_probs(4, 1, 3, seed)
        strings = ranked(brute_force(log_probs[:, 0]))
        words = [s for s, _ in strings if s][2::3]  # the unconstrained best is never a word
        result = prefix_beam_search(log_probs, [4], lexicon=Lexicon(words), top_n=2, **FULL)
        assert result.lexicon_fallback == [False]
        assert_matches(result.hypotheses[0], [item for item in strings if item[0] in words][:2])
        assert tuple(result.tokens[0]) != strings[0][0]


def test_lexicon_with_a_space_token_accepts_only_sequences_of_words():
    space, words = 3, [(1,), (2, 1)]
    log_probs = random_log_probs(5, 1, 4, seed=5, scale=0.7)

    def valid(string):
        parts, part = [], []
        for token in string:
            if token == space:
                parts.append(tuple(part))
                part = []
            else:
                part.append(token)
        return all(p in words for p in [*parts, tuple(part)])

    expected = [item for item in ranked(brute_force(log_probs[:, 0])) if valid(item[0])][:5]
    result = prefix_beam_search(log_probs, [5], beam_width=400, top_n=5,
                                lexicon=Lexicon(words, space=space), **FULL)
    assert any(space in s for s, _ in expected)
    assert_matches(result.hypotheses[0], expected)


def test_lexicon_falls_back_to_the_unconstrained_result_when_nothing_fits():
    log_probs = random_log_probs(5, 2, 3, seed=2)
    lexicon = Lexicon([(1, 2, 1)])  # needs 3 frames: sample 1 has only 2
    result = prefix_beam_search(log_probs, [5, 2], top_n=2, lexicon=lexicon)
    unconstrained = prefix_beam_search(log_probs, [5, 2], top_n=2)
    assert result.lexicon_fallback == [False, True]
    assert result.tokens[0] == [1, 2, 1]
    assert result.hypotheses[1] == unconstrained.hypotheses[1]


def oov_words(string, words, space):
    """Parts of ``string`` between space tokens (empty ones included) that are not ``words``."""
    parts, part = [], []
    for token in string:
        if token == space:
            parts.append(tuple(part))
            part = []
        else:
            part.append(token)
    return sum(p not in words for p in [*parts, tuple(part)])


@pytest.mark.parametrize("penalty", [0.5, 2.0])
@pytest.mark.parametrize("space", [None, 3])
def test_oov_penalty_ranks_like_brute_force(penalty, space):
    words = [(1,), (2, 1), (1, 2, 1)]
    log_probs = random_log_probs(5, 1, 4, seed=14, scale=0.8)
    scored = {s: lp - penalty * oov_words(s, words, space)
              for s, lp in brute_force(log_probs[:, 0]).items()}
    expected = ranked(scored)[:5]
    result = prefix_beam_search(log_probs, [5], beam_width=400, top_n=5,
                                lexicon=Lexicon(words, space=space), oov_penalty=penalty, **FULL)
    assert result.lexicon_fallback == [False]
    assert len({oov_words(s, words, space) for s, _ in expected}) > 1  # OOV and words compete
    assert [tuple(h.tokens) for h in result.hypotheses[0]] == [s for s, _ in expected]
    for hyp, (string, score) in zip(result.hypotheses[0], expected):
        assert hyp.score == pytest.approx(score, abs=1e-9)
        assert hyp.log_prob - hyp.score == pytest.approx(penalty * oov_words(string, words, space))


@pytest.mark.parametrize("seed", range(4))
def test_oov_penalty_is_a_likelihood_ratio_threshold(seed):
    log_probs = random_log_probs(4, 1, 3, seed)
    strings = ranked(brute_force(log_probs[:, 0]))
    free, free_lp = strings[0]
    word, word_lp = strings[3]  # the lexicon's only word, less probable than the free reading
    gap = free_lp - word_lp
    assert gap > 0.1
    decoded = {
        penalty: prefix_beam_search(log_probs, [4], beam_width=64, lexicon=Lexicon([word]),
                                    oov_penalty=penalty, **FULL).tokens[0]
        for penalty in (gap - 0.1, gap + 0.1)
    }
    assert tuple(decoded[gap - 0.1]) == free  # the lexicon word is too improbable: kept as read
    assert tuple(decoded[gap + 0.1]) == word  # within exp(penalty) of the reading: corrected


def test_oov_penalty_zero_ignores_the_lexicon_and_none_restricts_to_it():
    log_probs = random_log_probs(12, 4, 5, seed=8)
    lengths = [12, 10, 6, 12]
    words = [(1, 2), (3,), (2, 2, 1)]
    lexicon = Lexicon(words, space=4)
    free = prefix_beam_search(log_probs, lengths, top_n=3)
    assert prefix_beam_search(log_probs, lengths, top_n=3, lexicon=lexicon, oov_penalty=0.0) == free
    strict = prefix_beam_search(log_probs, lengths, top_n=3, lexicon=lexicon)
    infinite = prefix_beam_search(log_probs, lengths, top_n=3, lexicon=lexicon,
                                  oov_penalty=math.inf)
    assert infinite == strict != free
    assert strict.lexicon_fallback.count(False) >= 2
    for b, hyps in enumerate(strict.hypotheses):
        if not strict.lexicon_fallback[b]:
            assert all(oov_words(h.tokens, words, 4) == 0 for h in hyps)


def test_oov_penalty_never_needs_the_fallback():
    log_probs = random_log_probs(5, 2, 3, seed=2)
    lexicon = Lexicon([(1, 2, 1)])  # needs 3 frames: sample 1 has only 2
    result = prefix_beam_search(log_probs, [5, 2], top_n=2, lexicon=lexicon, oov_penalty=3.0)
    assert result.lexicon_fallback == [False, False]
    for hyp in result.hypotheses[1]:  # every string of sample 1 is out of the lexicon
        assert hyp.score == pytest.approx(hyp.log_prob - 3.0)


def bigram_log_prob(words, string, num_classes, k):
    """Independent add-k bigram over the non-blank classes, context padded with a start mark."""
    pairs, contexts = Counter(), Counter()
    for word in words:
        for prev, token in zip(("<s>", *word), word):
            pairs[prev, token] += 1
            contexts[prev] += 1
    vocabulary = num_classes - 1
    return sum(math.log((pairs[prev, token] + k) / (contexts[prev] + k * vocabulary))
               for prev, token in zip(("<s>", *string), string))


def test_prior_fusion_ranks_like_brute_force():
    words, weight = [(1, 2), (2, 2, 1), (1,)], 1.5
    prior = CharNgramPrior(words, num_classes=3, order=2, smoothing=0.5)
    log_probs = random_log_probs(5, 1, 3, seed=9)
    fused = {s: lp + weight * bigram_log_prob(words, s, 3, 0.5)
             for s, lp in brute_force(log_probs[:, 0]).items()}
    result = prefix_beam_search(log_probs, [5], beam_width=64, top_n=4, prior=prior,
                                prior_weight=weight, **FULL)
    expected = ranked(fused)[:4]
    assert [tuple(h.tokens) for h in result.hypotheses[0]] == [s for s, _ in expected]
    for hyp, (_, score) in zip(result.hypotheses[0], expected):
        assert hyp.score == pytest.approx(score, abs=1e-9)


def test_prior_weight_zero_equals_no_prior():
    log_probs = random_log_probs(12, 4, 5, seed=4)
    prior = CharNgramPrior([(1, 1, 2), (3, 4)], num_classes=5, order=3)
    with_prior = prefix_beam_search(log_probs, [12, 10, 6, 12], top_n=3, prior=prior,
                                    prior_weight=0.0)
    assert with_prior == prefix_beam_search(log_probs, [12, 10, 6, 12], top_n=3)


def test_a_strong_prior_flips_two_near_equal_candidates():
    frame = torch.tensor([0.02, 0.50, 0.48], dtype=torch.float64).log()
    log_probs = frame.expand(2, 1, 3).clone()
    exact = brute_force(log_probs[:, 0])
    assert ranked(exact)[0][0] == (1,) and exact[(2,)] > exact[(1,)] - 0.1  # near-equal
    prior = CharNgramPrior([(2,)], num_classes=3)
    plain = prefix_beam_search(log_probs, [2], prior=prior, prior_weight=0.0)
    fused = prefix_beam_search(log_probs, [2], prior=prior, prior_weight=2.0)
    assert plain.tokens == [[1]] and fused.tokens == [[2]]
    best = fused.hypotheses[0][0]
    assert best.log_prob == pytest.approx(exact[(2,)], abs=1e-12)
    assert best.score == pytest.approx(exact[(2,)] + 2.0 * bigram_log_prob([(2,)], (2,), 3, 1.0))


def test_prior_context_restarts_after_a_space():
    prior = CharNgramPrior([(1, 2), (2,)], num_classes=4, order=2, space=3)
    probs = [prior.next_log_probs(prefix) for prefix in [(), (1,), (1, 2), (1, 2, 3)]]
    for row in probs:
        assert row[BLANK] == -math.inf
        assert math.fsum(math.exp(v) for v in row[1:]) == pytest.approx(1.0)
    assert (probs[0] == probs[3]).all()  # after a space the context is a word start
    assert probs[2][3] > probs[2][1]  # a word ends after 2


def test_lexicon_words_from_strings_and_files(tmp_path, caplog):
    charset = Charset("ab ")  # a=1, b=2, space=3
    path = tmp_path / "words.txt"
    path.write_text("ab\n\nba\nxyz\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"words.txt:4: cannot encode 'xyz'"):
        read_words(path, charset.encode)
    with caplog.at_level(logging.WARNING):
        assert read_words(path, charset.encode, skip_unknown=True) == [(1, 2), (2, 1)]
    assert "skipped 1 of 4" in caplog.text
    with pytest.raises(ValueError, match="space token"):
        Lexicon(encode_words(["a b"], charset.encode), space=3)
    lexicon = Lexicon(encode_words(["ab", "a", "ab"], charset.encode), space=3)
    assert len(lexicon) == 2
    node = lexicon.step(lexicon.root, 1)
    assert lexicon.is_word(node) and sorted(lexicon.allowed(node)) == [2, 3]
    assert lexicon.step(lexicon.root, 3) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_input_gives_the_cpu_result():
    log_probs = random_log_probs(9, 3, 5, seed=6)
    lengths = torch.tensor([9, 4, 7])
    on_gpu = prefix_beam_search(log_probs.cuda(), lengths.cuda(), top_n=2)
    assert on_gpu == prefix_beam_search(log_probs, lengths, top_n=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_lengths": [3, 0]}, r"samples \[1\]"),
        ({"input_lengths": [3, 4]}, r"samples \[1\]"),
        ({"top_n": 3, "beam_width": 2}, "top_n"),
        ({"prune_top_k": 0}, "prune_top_k"),
        ({"lexicon": Lexicon([(1, 5)])}, r"ids \[5\]"),
        ({"prior": CharNgramPrior([(1,)], num_classes=5)}, "prior was built for 5"),
        ({"blank": 3}, "blank 3"),
        ({"oov_penalty": -1.0}, "oov_penalty"),
        ({"oov_penalty": math.nan}, "oov_penalty"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    arguments = {"log_probs": random_log_probs(3, 2, 3, seed=0), "input_lengths": [3, 3], **kwargs}
    with pytest.raises(ValueError, match=message):
        prefix_beam_search(**arguments)


def test_nan_or_impossible_log_probs_name_the_sample():
    log_probs = random_log_probs(3, 3, 3, seed=0)
    log_probs[1, 2, 0] = math.nan
    with pytest.raises(ValueError, match=r"samples \[2\] contain NaN"):
        prefix_beam_search(log_probs, [3, 3, 3])
    log_probs[:, 2] = -math.inf
    with pytest.raises(ValueError, match=r"samples \[2\]: every string has probability 0"):
        prefix_beam_search(log_probs, [3, 3, 3])

"""ctcocr.ctc.loss.ctc_loss against torch's built-in (float64), brute force, and edge cases.

Gradients are compared with respect to logits: torch's raw gradient w.r.t. log_probs follows a
different convention (exp(log_probs) - gamma) than ours (-gamma); through log_softmax they agree.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from ctc_cases import brute_force_nll, random_case

from ctcocr.ctc._ctc_lattice import build_lattice
from ctcocr.ctc._ctc_probspace import prob_forward_backward
from ctcocr.ctc.inputs import padded_targets
from ctcocr.ctc.loss import ctc_loss


def _loss_and_logit_grad(loss_fn, logits, *args, **kwargs):
    logits = logits.detach().requires_grad_(True)
    loss = loss_fn(logits.log_softmax(-1), *args, **kwargs)
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    return loss.detach(), grad


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-9) -> None:
    finite = expected[torch.isfinite(expected)]
    scale = finite.abs().max() if finite.numel() else 0.0
    atol = rtol * float(scale)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


def _concatenated(labels: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    return torch.cat([row[:n] for row, n in zip(labels, target_lengths.tolist())])


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("layout", ["padded", "concatenated"])
@pytest.mark.parametrize("lengths_kind", ["int64", "int32", "tuple"])
@pytest.mark.parametrize("blank", [0, 3])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_matches_builtin_float64(
    reduction: str, layout: str, lengths_kind: str, blank: int, zero_infinity: bool
) -> None:
    logits, labels, input_lengths, target_lengths = random_case(1, 24, 7, 6, 8, blank)
    targets = labels if layout == "padded" else _concatenated(labels, target_lengths)
    convert = {
        "int64": lambda x: x,
        "int32": lambda x: x.int(),
        "tuple": lambda x: tuple(x.tolist()),
    }[lengths_kind]
    args = (targets, convert(input_lengths), convert(target_lengths))
    kwargs = {"blank": blank, "reduction": reduction, "zero_infinity": zero_infinity}
    expected = _loss_and_logit_grad(F.ctc_loss, logits, *args, **kwargs)
    actual = _loss_and_logit_grad(ctc_loss, logits, *args, **kwargs)
    _assert_close(actual[0], expected[0])
    _assert_close(actual[1], expected[1])


@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_infeasible_sample(zero_infinity: bool, reduction: str) -> None:
    logits, labels, input_lengths, target_lengths = random_case(2, 10, 4, 5, 4)
    labels[1, :4] = torch.tensor([1, 1, 2, 2])  # needs 6 frames
    target_lengths[1], input_lengths[1] = 4, 5
    args = (labels, input_lengths, target_lengths)
    kwargs = {"reduction": reduction, "zero_infinity": zero_infinity}
    loss, grad = _loss_and_logit_grad(ctc_loss, logits, *args, **kwargs)
    expected, expected_grad = _loss_and_logit_grad(F.ctc_loss, logits, *args, **kwargs)
    _assert_close(loss, expected)
    assert torch.all(grad[:, 1] == 0)  # zero gradient for the infeasible sample, never NaN
    feasible = [0, 2, 3]
    _assert_close(grad[:, feasible], expected_grad[:, feasible])
    if reduction == "none":
        assert loss[1] == (0.0 if zero_infinity else math.inf)


@pytest.mark.parametrize(
    "frames,target,blank",
    [(5, [1, 2], 0), (5, [1, 1], 0), (4, [2, 2, 1], 0), (3, [], 0), (1, [1], 0), (5, [0, 1], 2),
     (3, [1, 1, 1], 0), (5, [2], 1)],
)
def test_matches_brute_force(frames: int, target: list[int], blank: int) -> None:
    gen = torch.Generator().manual_seed(frames + len(target))
    log_probs = torch.randn(frames, 3, generator=gen, dtype=torch.float64).log_softmax(-1)
    expected = brute_force_nll(log_probs, target, blank)
    padded = torch.tensor([target + [0] * (3 - len(target))])
    actual = ctc_loss(log_probs[:, None], padded, [frames], [len(target)], blank, "none")
    if math.isinf(expected):
        assert actual.item() == math.inf
    else:
        assert actual.item() == pytest.approx(expected, rel=1e-12)


def _check_ignores_padding_frames(logits, labels, input_lengths, target_lengths) -> None:
    """NaN log_probs past each input length are never read; their gradient is exactly zero."""
    args = (labels, input_lengths, target_lengths)
    expected = _loss_and_logit_grad(F.ctc_loss, logits, *args, reduction="none")
    valid = torch.arange(logits.size(0))[:, None] < input_lengths[None, :]
    log_probs = logits.log_softmax(-1)
    garbage = log_probs.masked_fill(~valid[..., None], math.nan).requires_grad_(True)
    loss = ctc_loss(garbage, *args, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), garbage)
    assert torch.all(grad[~valid] == 0)
    logit_grad = grad - log_probs.exp() * grad.sum(-1, keepdim=True)  # through log_softmax
    _assert_close(loss.detach(), expected[0])
    _assert_close(logit_grad[valid], expected[1][valid])


def test_edge_cases_match_builtin() -> None:
    """Repeated labels, empty targets, T = 1, short inputs with garbage padding frames."""
    logits = torch.randn(6, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([[1, 1, 0], [0, 0, 0], [2, 3, 3], [1, 2, 1], [3, 0, 0]])
    target_lengths = torch.tensor([2, 0, 3, 3, 1])
    input_lengths = torch.tensor([3, 6, 4, 6, 1])
    _check_ignores_padding_frames(logits, labels, input_lengths, target_lengths)


def test_single_frame_batch() -> None:
    logits = torch.randn(1, 3, 4, dtype=torch.float64)
    args = (torch.tensor([[2], [0], [1]]), [1, 1, 1], [1, 0, 1])
    expected = _loss_and_logit_grad(F.ctc_loss, logits, *args, reduction="none")
    actual = _loss_and_logit_grad(ctc_loss, logits, *args, reduction="none")
    _assert_close(actual[0], expected[0])
    _assert_close(actual[1], expected[1])


def test_long_sequence_has_no_underflow() -> None:
    logits, labels, input_lengths, target_lengths = random_case(4, 2000, 2, 6, 300)
    args = (labels, input_lengths, target_lengths)
    expected = _loss_and_logit_grad(F.ctc_loss, logits, *args, reduction="sum")
    actual = _loss_and_logit_grad(ctc_loss, logits, *args, reduction="sum")
    assert torch.isfinite(actual[0]) and expected[0] > 1000  # P(target) ~ exp(-1000s)
    _assert_close(actual[0], expected[0])
    _assert_close(actual[1], expected[1])
    loss32 = ctc_loss(logits.float().log_softmax(-1), *args, reduction="sum")
    assert loss32.item() == pytest.approx(expected[0].item(), rel=1e-4)


def test_large_vocabulary() -> None:
    """C = 6000 (more classes than states: the emissions are gathered before exp)."""
    logits, labels, input_lengths, target_lengths = random_case(5, 12, 3, 6000, 5)
    args = (labels, input_lengths, target_lengths)
    expected = _loss_and_logit_grad(F.ctc_loss, logits, *args)
    actual = _loss_and_logit_grad(ctc_loss, logits, *args)
    _assert_close(actual[0], expected[0])
    _assert_close(actual[1], expected[1])
    _check_ignores_padding_frames(logits, labels, input_lengths, target_lengths)


def test_unbatched_and_half_inputs() -> None:
    logits, labels, input_lengths, target_lengths = random_case(10, 10, 1, 5, 4)
    log_probs = logits[:, 0].log_softmax(-1)
    args = (labels[0, : target_lengths[0]], input_lengths[0], target_lengths[0])
    expected = F.ctc_loss(log_probs, *args, reduction="none")
    actual = ctc_loss(log_probs, *args, reduction="none")
    assert actual.shape == expected.shape == ()
    _assert_close(actual, expected)
    half = ctc_loss(log_probs.half(), *args, reduction="none")  # computed in float32
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(expected.item(), rel=1e-2)


def _errors_vs_float64(loss_fn, logits, args, reference):
    loss, grad = _loss_and_logit_grad(loss_fn, logits.float(), *args, reduction="none")
    loss_error = ((loss.double() - reference[0]).abs() / reference[0]).max()
    grad_error = (grad.double() - reference[1]).abs().max() / reference[1].abs().max()
    return float(loss_error), float(grad_error)


def test_float32_at_least_as_accurate_as_builtin() -> None:
    logits, labels, input_lengths, target_lengths = random_case(6, 96, 16, 30, 40)
    args = (labels, input_lengths, target_lengths)
    reference = _loss_and_logit_grad(F.ctc_loss, logits, *args, reduction="none")
    ours = _errors_vs_float64(ctc_loss, logits, args, reference)
    builtin = _errors_vs_float64(F.ctc_loss, logits, args, reference)
    assert ours[0] <= 2 * builtin[0] + 1e-7
    assert ours[1] <= 2 * builtin[1] + 1e-6


def _confident_logits(path: list[int], classes: int, gap: float) -> torch.Tensor:
    """(T, C) logits: the class of ``path`` at each frame beats the others by ``gap`` nats."""
    logits = torch.zeros(len(path), classes, dtype=torch.float64)
    logits[torch.arange(len(path)), torch.tensor(path)] = gap
    return logits


@pytest.mark.parametrize("gap", [50.0, 150.0, 300.0])
def test_confident_inputs_fall_back_to_exact(gap: float) -> None:
    """Probability space loses these (float32 from ~50 nats, float64 beyond ~150 nats): the
    fast path must flag them itself, and the result must still match float64 truth."""
    paths = [
        [0, 1, 1, 0, 2, 0, 3, 3, 0, 0, 1, 0],  # the target's own alignment
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # all blank: the target is very unlikely
        [2, 2, 3, 1, 1, 3, 2, 0, 2, 1, 3, 3],  # a wrong alignment
    ]
    logits = torch.stack([_confident_logits(p, 4, gap) for p in paths], dim=1)
    labels = torch.tensor([[1, 2, 3, 1]] * 3)
    args = (labels, [12, 12, 12], [4, 4, 4])
    reference = _loss_and_logit_grad(F.ctc_loss, logits, *args, reduction="none")
    for dtype in (torch.float32, torch.float64):
        loss, grad = _loss_and_logit_grad(ctc_loss, logits.to(dtype), *args, reduction="none")
        torch.testing.assert_close(loss.double(), reference[0], rtol=1e-6, atol=1e-5)
        torch.testing.assert_close(grad.double(), reference[1], rtol=0, atol=1e-5)

    lengths = torch.tensor([4, 4, 4])
    lattice = build_lattice(padded_targets(labels, lengths), lengths, torch.tensor([12] * 3), 0, 4)
    _, _, flagged = prob_forward_backward(logits.float().log_softmax(-1), lattice, False)
    assert flagged.tolist() == [False, True, True]
    _, _, flagged = prob_forward_backward(logits.log_softmax(-1), lattice, False)
    assert flagged.tolist() == [False, gap > 150, gap > 150]


def test_float32_on_random_confident_inputs() -> None:
    """Random peaky, blank-heavy and scaled logits (gaps up to 200 nats), float32 vs float64 truth:
    never worse than twice the built-in's own float32 error."""
    gen = torch.Generator().manual_seed(9)
    for trial in range(40):
        frames, classes = int(torch.randint(2, 30, (), generator=gen)), 2 + trial % 6
        gap = float(torch.rand((), generator=gen)) * 200
        logits = torch.randn(frames, 6, classes, generator=gen)
        if trial % 3 == 0:
            logits = logits * gap / 3
        elif trial % 3 == 1:
            logits[:, :, 0] += gap  # blank-heavy
        else:
            peaks = torch.randint(0, classes, (frames, 6, 1), generator=gen)
            logits.scatter_(2, peaks, gap)
        labels = torch.randint(1, classes, (6, frames // 2 + 1), generator=gen)
        target_lengths = torch.randint(0, frames // 2 + 2, (6,), generator=gen)
        input_lengths = torch.randint(1, frames + 1, (6,), generator=gen)
        args = (labels, input_lengths, target_lengths)
        kwargs = {"reduction": "none", "zero_infinity": True}
        log_probs = logits.log_softmax(-1)
        truth = F.ctc_loss(log_probs.double(), *args, **kwargs)
        ours = ctc_loss(log_probs, *args, **kwargs).double()
        builtin = F.ctc_loss(log_probs, *args, **kwargs).double()
        ours_error = ((ours - truth).abs() / (1 + truth)).max()
        builtin_error = ((builtin - truth).abs() / (1 + truth)).max()
        assert ours_error <= 2 * builtin_error + 1e-6, trial


@pytest.mark.slow
def test_float32_on_long_confident_inputs() -> None:
    """Like the test above on sequences of 20-200 frames, gradients included (about a minute)."""
    gen = torch.Generator().manual_seed(10)
    for trial in range(120):
        frames = int(torch.randint(20, 200, (), generator=gen))
        classes = int(torch.randint(3, 30, (), generator=gen))
        max_len = int(torch.randint(1, frames // 2 + 1, (), generator=gen))
        gap = 5 + float(torch.rand((), generator=gen)) * 115
        logits = torch.randn(frames, 8, classes, generator=gen)
        if trial % 3 == 0:
            logits = logits * gap / 4
        elif trial % 3 == 1:
            logits[:, :, 0] += gap
        else:
            peaks = torch.randint(0, classes, (frames, 8, 1), generator=gen)
            logits.scatter_(2, peaks, gap)
        labels = torch.randint(1, classes, (8, max_len), generator=gen)
        target_lengths = torch.randint(max(0, max_len - 3), max_len + 1, (8,), generator=gen)
        input_lengths = torch.randint(max(1, frames - 10), frames + 1, (8,), generator=gen)
        args = (labels, input_lengths, target_lengths)
        kwargs = {"reduction": "none", "zero_infinity": True}
        truth = _loss_and_logit_grad(F.ctc_loss, logits.double(), *args, **kwargs)
        ours = _loss_and_logit_grad(ctc_loss, logits, *args, **kwargs)
        builtin = _loss_and_logit_grad(F.ctc_loss, logits, *args, **kwargs)
        scales = (1 + truth[0], torch.ones(()))  # relative error of losses, absolute of gradients
        for index, (scale, slack) in enumerate(zip(scales, (1e-6, 1e-5))):
            ours_error = ((ours[index].double() - truth[index]).abs() / scale).max()
            builtin_error = ((builtin[index].double() - truth[index]).abs() / scale).max()
            assert ours_error <= 2 * builtin_error + slack, (trial, index)


def test_double_backward() -> None:
    logits, labels, input_lengths, target_lengths = random_case(7, 6, 2, 4, 2)
    args = (labels, input_lengths, target_lengths)
    log_probs = logits.log_softmax(-1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda lp: ctc_loss(lp, *args, reduction="none"), log_probs)
    assert torch.autograd.gradgradcheck(lambda lp: ctc_loss(lp, *args, reduction="sum"), log_probs)


@pytest.mark.parametrize(
    "labels,input_lengths,message",
    [
        ([[1, 0, 2]], [5], "target 0 has label 0 at position 1"),
        ([[1, 9]], [5], "label 9"),
        ([[1, 2]], [7], r"input_lengths\[0\] = 7"),
    ],
)
def test_bad_input_names_the_sample(labels, input_lengths, message: str) -> None:
    log_probs = torch.randn(6, 1, 4).log_softmax(-1)
    target = torch.tensor(labels)
    with pytest.raises(ValueError, match=message):
        ctc_loss(log_probs, target, input_lengths, [target.size(1)])


def test_keeps_the_callers_thread_count() -> None:
    logits, labels, input_lengths, target_lengths = random_case(11, 8, 3, 4, 3)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _loss_and_logit_grad(ctc_loss, logits, labels, input_lengths, target_lengths)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_empty_log_probs_raise() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        ctc_loss(torch.zeros(0, 2, 4), torch.tensor([[1], [2]]), [0, 0], [0, 1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_builtin() -> None:
    logits, labels, input_lengths, target_lengths = random_case(8, 40, 8, 10, 12)
    args = (labels.cuda(), input_lengths.cuda(), target_lengths.cuda())
    expected = _loss_and_logit_grad(F.ctc_loss, logits.cuda(), *args, reduction="none")
    actual = _loss_and_logit_grad(ctc_loss, logits.cuda(), *args, reduction="none")
    _assert_close(actual[0], expected[0])
    _assert_close(actual[1], expected[1])

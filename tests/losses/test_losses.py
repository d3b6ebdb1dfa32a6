"""Loss variants against plain CTC (torch's built-in) and hand computations, in float64."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from ctcocr.losses import CTCLoss, FocalCTCLoss, ReweightedCTCLoss, SmoothedCTCLoss

NUM_CLASSES = 6
IMPLEMENTATIONS = ["builtin", "custom"]


def make_batch(seed: int = 0, infeasible: bool = False):
    """Logits (T, B, C) float64 leaf, padded targets (B, S), input and target lengths (B,)."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(12, 3, NUM_CLASSES, generator=generator, dtype=torch.float64)
    targets = torch.randint(1, NUM_CLASSES, (3, 5), generator=generator)
    targets[0, 1] = targets[0, 0]  # a repeated label
    input_lengths = torch.tensor([12, 9, 3 if infeasible else 7])
    target_lengths = torch.tensor([5, 3, 4])
    return logits.requires_grad_(True), targets, input_lengths, target_lengths


def logit_grad(loss_fn, logits, *args):
    """Value of loss_fn(log_softmax(logits), *args) and its gradient with respect to the logits."""
    logits = logits.detach().requires_grad_(True)
    value = loss_fn(logits.log_softmax(-1), *args)
    value = value.loss if hasattr(value, "loss") else value
    (grad,) = torch.autograd.grad(value.sum(), logits)
    return value.detach(), grad


def torch_ctc(reduction: str = "mean"):
    return lambda lp, *a: F.ctc_loss(lp, *a, reduction=reduction, zero_infinity=True)


def reference_gamma(logits, targets, input_lengths, target_lengths):
    """Alignment posteriors from the identity dCTC/dlogits = p - gamma (valid frames)."""
    _, grad = logit_grad(torch_ctc("sum"), logits, targets, input_lengths, target_lengths)
    frames = torch.arange(logits.size(0))[:, None] < input_lengths[None, :]
    return (logits.softmax(-1) - grad) * frames[..., None]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ctc_matches_torch_value_and_gradient(reduction, implementation):
    logits, *batch = make_batch(infeasible=True)
    expected, expected_grad = logit_grad(torch_ctc(reduction), logits, *batch)
    loss = CTCLoss(reduction=reduction, implementation=implementation)
    output = loss(logits.log_softmax(-1), *batch)
    value, grad = logit_grad(loss, logits, *batch)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(output.ctc, expected)
    torch.testing.assert_close(grad, expected_grad)
    assert output.num_infinite == 1


def test_focal_with_gamma_zero_is_ctc():
    logits, *batch = make_batch()
    expected, expected_grad = logit_grad(torch_ctc(), logits, *batch)
    value, grad = logit_grad(FocalCTCLoss(alpha=1.0, gamma=0.0), logits, *batch)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize(("alpha", "gamma"), [(1.0, 2.0), (0.25, 0.5)])
def test_focal_matches_formula(alpha, gamma):
    logits, targets, input_lengths, target_lengths = make_batch(seed=1)

    def focal(lp, *args):
        nll = F.ctc_loss(lp, *args, reduction="none")
        return (alpha * (1 - torch.exp(-nll)) ** gamma * nll / target_lengths).mean()

    expected, expected_grad = logit_grad(focal, logits, targets, input_lengths, target_lengths)
    loss = FocalCTCLoss(alpha=alpha, gamma=gamma)
    value, grad = logit_grad(loss, logits, targets, input_lengths, target_lengths)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, expected_grad)


def test_focal_gradient_finite_at_zero_loss():
    targets = torch.tensor([[1, 2, 3]])
    logits = torch.full((3, 1, 4), -1e4, dtype=torch.float64)
    logits[torch.arange(3), 0, targets[0]] = 0.0  # the only path has probability 1
    value, grad = logit_grad(FocalCTCLoss(gamma=0.5), logits, targets, [3], [3])
    assert value == 0
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("renormalize", [False, True])
def test_reweighted_with_unit_weights_has_ctc_gradient(renormalize, implementation):
    logits, *batch = make_batch(infeasible=True)
    _, expected_grad = logit_grad(torch_ctc(), logits, *batch)
    loss = ReweightedCTCLoss(renormalize=renormalize, implementation=implementation)
    _, grad = logit_grad(loss, logits, *batch)
    torch.testing.assert_close(grad, expected_grad)


def test_reweighted_value_matches_hand_computation():
    logits, targets, input_lengths, target_lengths = make_batch(seed=2)
    weights = torch.linspace(0.5, 2.0, NUM_CLASSES, dtype=torch.float64)
    loss = ReweightedCTCLoss(blank_weight=0.3, class_weights=weights.tolist(), reduction="none")
    value = loss(logits.log_softmax(-1), targets, input_lengths, target_lengths).loss
    gamma = reference_gamma(logits, targets, input_lengths, target_lengths)
    expected_weights = weights.clone()
    expected_weights[0] *= 0.3
    expected = -(expected_weights * gamma * logits.log_softmax(-1)).sum((0, 2))
    torch.testing.assert_close(value, expected.detach())


def test_reweighted_rejects_wrong_number_of_class_weights():
    logits, *batch = make_batch()
    with pytest.raises(ValueError, match="class_weights has 3 entries"):
        ReweightedCTCLoss(class_weights=[1.0, 2.0, 3.0])(logits.log_softmax(-1), *batch)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("form", ["targets", "uniform_kl", "confidence_penalty"])
def test_smoothed_with_zero_eps_has_ctc_gradient(form, implementation):
    logits, *batch = make_batch(infeasible=True)
    _, expected_grad = logit_grad(torch_ctc(), logits, *batch)
    loss = SmoothedCTCLoss(eps=0.0, form=form, implementation=implementation)
    _, grad = logit_grad(loss, logits, *batch)
    torch.testing.assert_close(grad, expected_grad)


def test_smoothed_targets_and_uniform_kl_share_gradient_and_differ_by_entropy():
    logits, targets, input_lengths, target_lengths = make_batch(seed=3)
    eps = 0.3
    batch = (targets, input_lengths, target_lengths)
    targets_form = SmoothedCTCLoss(eps, "targets", reduction="none")
    kl_form = SmoothedCTCLoss(eps, "uniform_kl", reduction="none")
    by_targets, grad_targets = logit_grad(targets_form, logits, *batch)
    by_kl, grad_kl = logit_grad(kl_form, logits, *batch)
    torch.testing.assert_close(grad_targets, grad_kl)
    # Value gap: (1 - eps) * H(alignment posterior) + eps * T * log C; H = CE(gamma, p) - CTC.
    gamma = reference_gamma(logits, *batch)
    ctc = F.ctc_loss(logits.log_softmax(-1), *batch, reduction="none").detach()
    posterior_entropy = -(gamma * logits.log_softmax(-1)).sum((0, 2)).detach() - ctc
    gap = (1 - eps) * posterior_entropy + eps * input_lengths * math.log(NUM_CLASSES)
    torch.testing.assert_close(by_targets - by_kl, gap)


def test_confidence_penalty_matches_hand_computation():
    logits, targets, input_lengths, target_lengths = make_batch(seed=4)
    eps = 0.2
    loss = SmoothedCTCLoss(eps=eps, form="confidence_penalty", reduction="sum")
    value = loss(logits.log_softmax(-1), targets, input_lengths, target_lengths).loss
    batch = (targets, input_lengths, target_lengths)
    expected = F.ctc_loss(logits.log_softmax(-1), *batch, reduction="sum")
    probs = logits.detach().softmax(-1)
    for b in range(logits.size(1)):
        for t in range(int(input_lengths[b])):
            entropy = -sum(float(p) * math.log(float(p)) for p in probs[t, b])
            expected = expected + eps * (math.log(NUM_CLASSES) - entropy)
    torch.testing.assert_close(value, expected)


VARIANTS = [
    pytest.param(CTCLoss, id="ctc"),
    pytest.param(FocalCTCLoss, id="focal"),
    pytest.param(ReweightedCTCLoss, id="reweighted"),
    pytest.param(
        partial(ReweightedCTCLoss, blank_weight=0.5, renormalize=True), id="reweighted-renormalized"
    ),
    pytest.param(partial(SmoothedCTCLoss, form="targets"), id="smoothed-targets"),
    pytest.param(partial(SmoothedCTCLoss, form="uniform_kl"), id="smoothed-uniform_kl"),
    pytest.param(partial(SmoothedCTCLoss, form="confidence_penalty"), id="smoothed-penalty"),
]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_zero_infinity_drops_only_the_infeasible_sample(variant, implementation):
    logits, targets, input_lengths, target_lengths = make_batch(infeasible=True)
    loss = variant(reduction="sum", implementation=implementation)
    value, grad = logit_grad(loss, logits, targets, input_lengths, target_lengths)
    feasible = [0, 1]
    sub_batch = [x[feasible] for x in (targets, input_lengths, target_lengths)]
    sub_value, sub_grad = logit_grad(loss, logits[:, feasible], *sub_batch)
    output = loss(logits.log_softmax(-1), targets, input_lengths, target_lengths)
    assert output.num_infinite == 1
    torch.testing.assert_close(value, sub_value)
    torch.testing.assert_close(grad[:, feasible], sub_grad)
    assert (grad[:, 2] == 0).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_without_zero_infinity_an_infeasible_sample_gives_infinite_loss(variant):
    logits, *batch = make_batch(infeasible=True)
    output = variant(zero_infinity=False)(logits.log_softmax(-1), *batch)
    assert output.loss == math.inf and output.ctc == math.inf and output.num_infinite == 1


DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    ),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_bf16_autocast_input_gives_float32_loss(variant, implementation, device):
    logits, *batch = (x.to(device) for x in make_batch())
    logits = logits.detach().float().requires_grad_(True)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        log_probs = logits.to(torch.bfloat16).log_softmax(-1)
        output = variant(implementation=implementation)(log_probs, *batch)
    output.loss.backward()
    reference = variant()(logits.detach().double().log_softmax(-1), *batch)
    assert output.loss.dtype == torch.float32 and output.ctc.dtype == torch.float32
    assert torch.isfinite(logits.grad).all()
    torch.testing.assert_close(output.loss.double(), reference.loss, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("variant", VARIANTS)
def test_values_are_the_same_under_no_grad(variant):
    logits, *batch = make_batch(infeasible=True)
    expected = variant()(logits.log_softmax(-1), *batch)
    with torch.no_grad():
        output = variant()(logits.log_softmax(-1), *batch)
    assert not output.loss.requires_grad
    torch.testing.assert_close(output.loss, expected.loss.detach())
    torch.testing.assert_close(output.ctc, expected.ctc)


@pytest.mark.parametrize("bad_label", [0, NUM_CLASSES, -1])
def test_labels_that_are_blank_or_out_of_range_name_the_sample(bad_label):
    logits, targets, input_lengths, target_lengths = make_batch()
    targets[1, 2] = bad_label
    targets[2, 4] = bad_label  # past sample 2's length: padding, not an error
    with pytest.raises(ValueError, match=r"samples \[1\]"):
        CTCLoss()(logits.log_softmax(-1), targets, input_lengths, target_lengths)


def test_unknown_options_are_rejected():
    with pytest.raises(ValueError, match="implementation"):
        CTCLoss(implementation="cudnn")
    with pytest.raises(ValueError, match="reduction"):
        CTCLoss(reduction="max")
    with pytest.raises(ValueError, match="form"):
        SmoothedCTCLoss(form="gaussian")

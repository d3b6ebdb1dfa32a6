"""alignment_targets against an explicit float64 forward-backward written here as the reference."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ctcocr.ctc.targets import alignment_targets, ctc_with_targets

BLANK = 0


def reference_posteriors(
    log_probs: torch.Tensor, target: list[int], num_frames: int
) -> torch.Tensor:
    """gamma (T, C) of one sample by the alpha/beta recursions in probability space (float64)."""
    probs = log_probs[:num_frames].double().exp()
    ext = [BLANK]
    for label in target:
        ext += [label, BLANK]
    num_states = len(ext)

    def predecessors(s: int) -> list[int]:
        allowed = [s, s - 1]
        if s >= 2 and ext[s] != BLANK and ext[s] != ext[s - 2]:
            allowed.append(s - 2)
        return [p for p in allowed if p >= 0]

    alpha = torch.zeros(num_frames, num_states, dtype=torch.float64)
    beta = torch.zeros(num_frames, num_states, dtype=torch.float64)
    alpha[0, : min(2, num_states)] = probs[0, ext[: min(2, num_states)]]
    for t in range(1, num_frames):
        for s in range(num_states):
            alpha[t, s] = probs[t, ext[s]] * sum(alpha[t - 1, p] for p in predecessors(s))
    beta[-1, max(0, num_states - 2) :] = probs[-1, ext[max(0, num_states - 2) :]]
    for t in range(num_frames - 2, -1, -1):
        for s in range(num_states):
            successors = [n for n in range(num_states) if s in predecessors(n)]
            beta[t, s] = probs[t, ext[s]] * sum(beta[t + 1, n] for n in successors)
    occupancy = alpha * beta / probs[:, ext]  # each state's emission is counted twice
    likelihood = occupancy[0].sum()
    gamma = torch.zeros(num_frames, probs.size(1), dtype=torch.float64)
    gamma.index_add_(1, torch.tensor(ext), occupancy / likelihood)
    return gamma


def make_case(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(9, 4, 5, generator=generator, dtype=torch.float64)
    targets = [[1, 2, 2], [3], [4, 1, 4, 2], [2, 3, 3, 3]]  # the last cannot fit in 5 frames
    padded = torch.tensor([t + [0] * (4 - len(t)) for t in targets])
    input_lengths = torch.tensor([9, 6, 8, 5])
    target_lengths = torch.tensor([len(t) for t in targets])
    return logits.log_softmax(-1), targets, padded, input_lengths, target_lengths


def check_against_reference(gamma, log_probs, targets, input_lengths, atol=1e-10):
    for b, target in enumerate(targets):
        length = int(input_lengths[b])
        assert (gamma[length:, b] == 0).all()
        if b == 3:  # infeasible: documented as all-zero rows
            assert (gamma[:, b] == 0).all()
            continue
        expected = reference_posteriors(log_probs[:, b], target, length)
        torch.testing.assert_close(gamma[:length, b].double(), expected, atol=atol, rtol=0)


def test_builtin_targets_match_forward_backward():
    log_probs, targets, padded, input_lengths, target_lengths = make_case()
    gamma = alignment_targets(log_probs, padded, input_lengths, target_lengths)
    assert gamma.dtype == torch.float64
    check_against_reference(gamma, log_probs, targets, input_lengths)
    valid_rows = gamma[:, :3].sum(-1)
    frames = torch.arange(9)[:, None] < input_lengths[:3]
    torch.testing.assert_close(valid_rows, frames.double())


def true_gradient_ctc(
    log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity
):
    """The built-in's values with the true derivative -gamma instead of its p - gamma (a drop-in).

    Adds a term worth 0 whose gradient is -p on the valid frames of finite samples.
    """
    assert reduction == "none"
    args = (log_probs, targets, input_lengths, target_lengths)
    loss = F.ctc_loss(*args, blank=blank, reduction="none", zero_infinity=zero_infinity)
    with torch.no_grad():
        finite = torch.isfinite(F.ctc_loss(*args, blank=blank, reduction="none"))
    valid = (torch.arange(log_probs.size(0))[:, None] < input_lengths[None, :]) & finite
    probs = log_probs.detach().exp()
    zero = (probs * (log_probs - log_probs.detach()) * valid[..., None]).sum((0, 2))
    return loss - zero


def test_true_gradient_convention_gives_the_same_targets():
    log_probs, targets, padded, input_lengths, target_lengths = make_case(seed=1)
    leaf = log_probs.clone().requires_grad_(True)
    loss = true_gradient_ctc(leaf, padded, input_lengths, target_lengths, BLANK, "none", True)
    (grad,) = torch.autograd.grad(loss.sum(), leaf)
    negative_gamma = -reference_posteriors(log_probs[:, 0], targets[0], 9)
    torch.testing.assert_close(grad[:, 0], negative_gamma, atol=1e-10, rtol=0)  # its convention
    batch = (padded, input_lengths, target_lengths)
    gamma = alignment_targets(log_probs, *batch, ctc_fn=true_gradient_ctc)
    check_against_reference(gamma, log_probs, targets, input_lengths)


def test_concatenated_targets_and_returned_losses():
    log_probs, targets, padded, input_lengths, target_lengths = make_case(seed=2)
    concatenated = torch.tensor([label for target in targets for label in target])
    lengths = (input_lengths.tolist(), target_lengths.tolist())
    result = ctc_with_targets(log_probs, concatenated, *lengths)
    check_against_reference(result.gamma, log_probs, targets, input_lengths)
    assert result.infinite.tolist() == [False, False, False, True]
    batch = (padded, input_lengths, target_lengths)
    expected = F.ctc_loss(log_probs, *batch, reduction="none", zero_infinity=True)
    torch.testing.assert_close(result.loss, expected)


def test_works_under_no_grad_and_leaves_input_untouched():
    log_probs, targets, padded, input_lengths, target_lengths = make_case(seed=3)
    logits = log_probs.clone().requires_grad_(True)
    with torch.no_grad():
        gamma = alignment_targets(logits, padded, input_lengths, target_lengths)
    assert not gamma.requires_grad and logits.grad is None
    check_against_reference(gamma, log_probs, targets, input_lengths)


def test_bf16_autocast_computes_in_float32():
    log_probs, targets, padded, input_lengths, target_lengths = make_case(seed=4)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        gamma = alignment_targets(log_probs.float(), padded, input_lengths, target_lengths)
    assert gamma.dtype == torch.float32
    check_against_reference(gamma, log_probs, targets, input_lengths, atol=1e-5)


def test_custom_ctc_targets_match_forward_backward():
    from ctcocr.ctc.loss import ctc_loss

    log_probs, targets, padded, input_lengths, target_lengths = make_case(seed=5)
    gamma = alignment_targets(log_probs, padded, input_lengths, target_lengths, ctc_fn=ctc_loss)
    check_against_reference(gamma, log_probs, targets, input_lengths)

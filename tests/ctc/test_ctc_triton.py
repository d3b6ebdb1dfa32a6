"""The Triton CTC kernels against torch's built-in CTC in float64 and brute force.

Triton picks its interpreter when it is imported, so the kernel tests run where the kernels can:
on CUDA tensors in this process, or on CPU tensors when TRITON_INTERPRET=1 was set before the
import. Without either, ``test_kernels_in_interpreter`` reruns this module in a subprocess with
TRITON_INTERPRET=1, leaving every other test module's Triton untouched. Gradients are compared
with respect to logits (through log_softmax), where the two gradient conventions agree.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from ctc_cases import brute_force_nll, random_case

from ctcocr.ctc.inputs import padded_targets

triton = pytest.importorskip("triton")
from ctcocr.ctc import _ctc_triton

_INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
_DEVICE = "cpu" if _INTERPRETED else "cuda"
kernel_test = pytest.mark.skipif(
    not (_INTERPRETED or torch.cuda.is_available()),
    reason="no CUDA: run on CPU by test_kernels_in_interpreter",
)


def test_kernels_in_interpreter() -> None:
    """This module's kernel tests, on CPU under Triton's interpreter, in a fresh process."""
    if _INTERPRETED:
        pytest.skip("already running in the interpreter")
    command = [sys.executable, "-m", "pytest", __file__, "-q", "-x", "--noconftest",
               "-p", "no:cacheprovider", "-k", "not test_kernels_in_interpreter"]  # fmt: skip
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout.splitlines()[-1]  # not everything skipped


@pytest.mark.skipif(_INTERPRETED, reason="the interpreter does not compile")
@pytest.mark.parametrize("dtype", ["fp32", "fp64"])
def test_kernels_compile_for_cuda(dtype: str, tmp_path, monkeypatch) -> None:
    """Both kernels compile to a CUDA binary (sm_90) without a GPU.

    The interpreter runs the kernels as NumPy code and lets through type errors (such as a loop
    variable changing dtype) that only the compiler rejects.
    """
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))  # compile for real, keep ~ clean
    int_pointers = {"targets_ptr", "input_lengths_ptr", "target_lengths_ptr", "frames_ptr"}
    for kernel in (_ctc_triton._ctc_alpha_kernel, _ctc_triton._ctc_beta_grad_kernel):
        signature = {name: "i32" for name in kernel.arg_names}
        signature.update({name: f"*{dtype}" for name in kernel.arg_names if name.endswith("_ptr")})
        signature.update({name: "*i64" for name in int_pointers & set(kernel.arg_names)})
        signature.update(log_zero="fp32", BLOCK_S="constexpr")
        source = ASTSource(kernel, signature, {"BLOCK_S": 128})
        compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32))
        assert compiled.asm["cubin"]


def _kernel(log_probs, padded, input_lengths, target_lengths, blank=0):
    """The kernels on _DEVICE; the result back on the CPU."""
    args = (t.to(_DEVICE) for t in (log_probs, padded, input_lengths, target_lengths))
    return _ctc_triton.triton_ctc_neg_log_likelihood(*args, blank).cpu()


def _builtin(log_probs, labels, input_lengths, target_lengths, blank=0):
    """torch's per-sample losses, +inf where infeasible, with a zero gradient there."""
    losses = F.ctc_loss(log_probs, labels, input_lengths, target_lengths, blank, "none", True)
    infeasible = F.ctc_loss(log_probs.detach(), labels, input_lengths, target_lengths, blank,
                            "none").isinf()  # fmt: skip
    return torch.where(infeasible, math.inf, losses)


def _loss_and_logit_grad(loss_fn, logits, weights, *args):
    """Per-sample losses (B,) and d(sum_b weights_b loss_b)/d logits (T, B, C)."""
    logits = logits.detach().requires_grad_(True)
    losses = loss_fn(logits.log_softmax(-1), *args)
    (grad,) = torch.autograd.grad(losses, logits, grad_outputs=weights.to(losses.dtype))
    return losses.detach(), grad


def _compare(logits, labels, input_lengths, target_lengths, blank, dtype, rtol) -> None:
    """Losses and logit gradients of the kernels in ``dtype`` vs the built-in in float64."""
    weights = torch.rand(logits.size(1), generator=torch.Generator().manual_seed(7)) + 0.5
    args = (input_lengths, target_lengths, blank)
    padded = padded_targets(labels, target_lengths)
    actual = _loss_and_logit_grad(_kernel, logits.to(dtype), weights, padded, *args)
    expected = _loss_and_logit_grad(_builtin, logits, weights, labels, *args)
    for got, want in zip(actual, expected):
        assert got.dtype == dtype
        finite = want[torch.isfinite(want)]
        atol = rtol * float(finite.abs().max()) if finite.numel() else 0.0
        torch.testing.assert_close(got.double(), want, rtol=rtol, atol=atol)


@kernel_test
@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("blank", [0, 4])
def test_matches_builtin(dtype: torch.dtype, rtol: float, blank: int) -> None:
    logits, labels, input_lengths, target_lengths = random_case(
        1, 12, 3, 5, 4, blank, pin_first_sample=True
    )
    _compare(logits, labels, input_lengths, target_lengths, blank, dtype, rtol)


@kernel_test
@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_edge_cases_match_builtin(dtype: torch.dtype, rtol: float) -> None:
    """Repeats at the feasibility limit, infeasible, empty targets, T = 1, no frames at all."""
    logits = torch.randn(6, 7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([[1, 1, 2], [1, 1, 1], [0, 0, 0], [2, 3, 3], [3, 0, 0], [0, 0, 0],
                           [2, 0, 0]])  # fmt: skip
    target_lengths = torch.tensor([3, 3, 0, 3, 1, 0, 1])
    input_lengths = torch.tensor([4, 4, 6, 3, 1, 0, 0])  # samples 1, 3, 6 are infeasible
    _compare(logits, labels, input_lengths, target_lengths, 0, dtype, rtol)


@kernel_test
def test_infeasible_gets_inf_and_zero_gradient() -> None:
    log_probs = torch.randn(4, 2, 3).log_softmax(-1).requires_grad_(True)
    padded = torch.tensor([[1, 1, 1], [1, 2, 0]])  # sample 0 needs 5 frames
    losses = _kernel(log_probs, padded, torch.tensor([4, 4]), torch.tensor([3, 2]))
    assert losses[0].item() == math.inf and math.isfinite(losses[1].item())
    (grad,) = torch.autograd.grad(losses.sum(), log_probs)
    assert torch.all(grad[:, 0] == 0) and grad[:, 1].abs().sum() > 0


@kernel_test
@pytest.mark.parametrize("blank", [0, 2])
def test_matches_brute_force(blank: int) -> None:
    """Tiny samples, every label path enumerated (float64 kernels)."""
    targets = [[1, 2], [1, 1], [2, 2, 1], [], [1, 1, 1], [0, 1]]
    targets = [[k + (k >= blank) for k in target] for target in targets]  # never blank
    frames = 5
    gen = torch.Generator().manual_seed(11)
    log_probs = torch.randn(frames, len(targets), 4, generator=gen, dtype=torch.float64)
    log_probs = log_probs.log_softmax(-1)
    padded = torch.tensor([target + [0] * (3 - len(target)) for target in targets])
    target_lengths = torch.tensor([len(target) for target in targets])
    input_lengths = torch.full_like(target_lengths, frames)
    actual = _kernel(log_probs, padded, input_lengths, target_lengths, blank)
    for b, target in enumerate(targets):
        expected = brute_force_nll(log_probs[:, b], target, blank)
        assert actual[b].item() == pytest.approx(expected, rel=1e-12)


@kernel_test
def test_ignores_padding_frames_and_follows_strides() -> None:
    """NaN past each input length is never read; (B, T, C) inputs seen as (T, B, C) views."""
    logits, labels, input_lengths, target_lengths = random_case(
        2, 10, 3, 6, 3, pin_first_sample=True
    )
    log_probs = logits.log_softmax(-1)
    valid = torch.arange(10)[:, None] < input_lengths[None, :]
    garbage = log_probs.masked_fill(~valid[..., None], math.nan)
    strided = garbage.transpose(0, 1).contiguous().transpose(0, 1).requires_grad_(True)
    padded = padded_targets(labels, target_lengths)
    losses = _kernel(strided, padded, input_lengths, target_lengths)
    (grad,) = torch.autograd.grad(losses.sum(), strided)
    assert torch.all(grad[~valid] == 0)
    expected = F.ctc_loss(log_probs, labels, input_lengths, target_lengths, reduction="none")
    torch.testing.assert_close(losses, expected, rtol=1e-12, atol=0)
    with torch.no_grad():  # the forward that keeps two alpha rows only
        no_grad = _kernel(log_probs, padded, input_lengths, target_lengths)
    torch.testing.assert_close(no_grad, expected, rtol=1e-12, atol=0)


def _confident_logits(frames: int, labels: torch.Tensor, boosts: list[float]) -> torch.Tensor:
    """Random logits (T, B, C) plus boosts[b] on one frame per label of sample b (peaky outputs)."""
    gen = torch.Generator().manual_seed(5)
    batch, length = labels.shape
    logits = torch.randn(frames, batch, int(labels.max()) + 1, generator=gen, dtype=torch.float64)
    frame_of_label = torch.linspace(0, frames - 2, length).long()
    for b, boost in enumerate(boosts):
        logits[frame_of_label, b, labels[b]] += boost
    return logits


@kernel_test
def test_moderate_shape_float32() -> None:
    """T = 40, L = 12 in float32 vs float64: one random and one confident (peaky) sample."""
    _, labels, _, target_lengths = random_case(4, 40, 2, 9, 12, pin_first_sample=True)
    logits = _confident_logits(40, labels, [0.0, 25.0])
    input_lengths = torch.tensor([33, 40])
    _compare(logits, labels, input_lengths, target_lengths, 0, torch.float32, 1e-5)


def _errors(actual, expected) -> tuple[float, float]:
    """Largest (loss, gradient) errors of ``actual`` against float64 ``expected``.

    Loss errors are relative to each loss (feasible samples), gradient errors to the largest one.
    """
    feasible = torch.isfinite(expected[0])
    losses = ((actual[0].double() - expected[0]) / expected[0])[feasible].abs().max()
    grads = (actual[1].double() - expected[1]).abs().max() / expected[1].abs().max()
    return float(losses), float(grads)


@pytest.mark.skipif(_INTERPRETED or not torch.cuda.is_available(), reason="needs CUDA")
def test_long_targets_on_cuda() -> None:
    """L up to 60 (128 states over 4 warps: the block barrier between frames matters), T = 150.

    At this size float32 inputs alone move the gradient by ~5e-4 (relative): the kernels must be
    as accurate as the built-in in float32, both judged against float64.
    """
    _, labels, input_lengths, target_lengths = random_case(
        9, 150, 16, 20, 60, pin_first_sample=True
    )
    logits = _confident_logits(150, labels, [0.0, 25.0] * 8)
    weights = torch.ones(16)
    args = (input_lengths, target_lengths, 0)
    padded = padded_targets(labels, target_lengths)
    expected = _loss_and_logit_grad(_builtin, logits, weights, labels, *args)
    float32 = logits.float()
    kernel = _errors(_loss_and_logit_grad(_kernel, float32, weights, padded, *args), expected)
    builtin = _errors(_loss_and_logit_grad(_builtin, float32, weights, labels, *args), expected)
    assert kernel[0] <= 2 * builtin[0] + 1e-7
    assert kernel[1] <= 1.5 * builtin[1]

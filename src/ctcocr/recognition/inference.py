"""The device and precision convention of every inference command (eval, predict, export, the
test after training): float32 unless a bf16 precision is asked for, one device."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ctcocr.recognition.recognizer import LineReader


def accelerator_device(accelerator: str) -> str:
    """The one device to run inference on for a trainer accelerator: the first GPU, or the CPU."""
    return "cuda" if accelerator in ("gpu", "cuda") else "cpu"


def inference_context(device: str, precision: str | int = "32-true") -> contextlib.ExitStack:
    """No autograd, and bfloat16 autocast when ``precision`` is a bf16 one (e.g. "bf16-mixed")."""
    autocast = torch.autocast(torch.device(device).type, dtype=torch.bfloat16,
                              enabled=str(precision).startswith("bf16"))
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    stack.enter_context(autocast)
    return stack


def on_device(recognizer: LineReader, device: str) -> LineReader:
    """A PyTorch recognizer moved to ``device`` in eval mode; an ONNX one (CPU) as it is."""
    return recognizer.to(device).eval() if isinstance(recognizer, nn.Module) else recognizer

"""Export a recognizer as one self-contained ONNX file and check ONNX Runtime against PyTorch.

The graph takes ``images`` (B, 1, H, W) float32 in [-1, 1] and ``widths`` (B,) int64 (each image's
width before batch padding), with dynamic B and W, and returns ``log_probs`` (T, B, C) float32 and
``lengths`` (B,) int64, the valid frames per sample. The charset, preprocessing and model config
are stored in the file's metadata, so ``OnnxRecognizer(path)`` (or the torch-free
``ctcocr.lite.OnnxReader(path)``) needs nothing else. :func:`quantize_int8` writes an 8-bit copy.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from pathlib import Path

import onnx
import torch

from ctcocr.recognition.onnx_recognizer import (
    INPUT_NAMES,
    OUTPUT_NAMES,
    OnnxRecognizer,
    recognizer_metadata,
)
from ctcocr.recognition.recognizer import Recognizer

DYNAMIC_AXES = {
    "images": {0: "batch", 3: "width"},
    "widths": {0: "batch"},
    "log_probs": {0: "frames", 1: "batch"},
    "lengths": {0: "batch"},
}


#: The quantisations ``ctcocr-export quantize=...`` offers.
QUANTIZATIONS = ("int8",)


class ParityError(RuntimeError):
    """The exported model's outputs differ from PyTorch's."""


def export_onnx(recognizer: Recognizer, path: str | Path, opset: int = 17) -> Path:
    """Write the recognizer's network and frame counting to ``path`` as ONNX, with its charset,
    preprocessing and model config in the metadata; returns the path. The recognizer is moved to
    the CPU in eval mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recognizer = recognizer.cpu().eval()
    height = recognizer.height
    # Two samples of different widths, so that neither batch size nor width becomes a constant.
    example = (torch.zeros(2, 1, height, 64), torch.tensor([64, 40]))
    with warnings.catch_warnings():
        # TorchScript tracing (dynamo=False) handles nn.LSTM with dynamic sequence length and
        # batch size; its notes on LSTM argument checks and batch sizes are what the parity
        # check verifies.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message=".*batch_size other than 1.*LSTM")
        warnings.filterwarnings("ignore", message="The feature will be removed")
        torch.onnx.export(
            recognizer, example, str(path), dynamo=False, opset_version=opset,
            input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
            dynamic_axes=DYNAMIC_AXES,
        )
    model = onnx.load(str(path))
    metadata = recognizer_metadata(recognizer.metadata())
    onnx.helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def parity_error(
    recognizer: Recognizer, exported: OnnxRecognizer, widths: Iterable[int],
    batch_size: int = 3, seed: int = 0,
) -> float:
    """Largest |log-prob difference| between PyTorch and ONNX Runtime over random batches of each
    image width (samples of random true widths); infinite if the frame counts differ."""
    generator = torch.Generator().manual_seed(seed)
    height = recognizer.height
    worst = 0.0
    for width in widths:
        images = torch.rand(batch_size, 1, height, width, generator=generator) * 2 - 1
        true_widths = torch.randint(1, width + 1, (batch_size,), generator=generator)
        true_widths[0] = width
        with torch.inference_mode():
            expected, expected_lengths = recognizer(images, true_widths)
        log_probs, lengths = exported(images, true_widths)
        if log_probs.shape != expected.shape or not torch.equal(lengths, expected_lengths):
            return float("inf")
        worst = max(worst, float((log_probs - expected).abs().max()))
    return worst


def quantize_int8(source: str | Path, target: str | Path) -> Path:
    """Write an 8-bit copy of the exported model ``source`` to ``target`` (ONNX Runtime's dynamic
    quantisation: the weights of the convolutions, matrix products and LSTMs stored as signed
    8-bit integers, activations quantised on the fly), metadata kept; returns ``target``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to run shape inference first, logged on every call
    try:
        quantize_dynamic(Path(source), target, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return target

"""ctcocr-export: write a trained recognizer as one self-contained ONNX file (configs/export.yaml).

The graph takes ``images`` (B, 1, H, W) float32 in [-1, 1] and ``widths`` (B,) int64 (each image's
width before batch padding), with dynamic B and W, and returns ``log_probs`` (T, B, C) float32 and
``lengths`` (B,) int64, the valid frames per sample. The charset, blank and input height are stored
in the file's metadata, so ``OnnxRecognizer(path)`` (and ``ctcocr-predict``) needs nothing else.
After writing, ONNX Runtime is checked against PyTorch on random lines of several widths. Example::

    ctcocr-export ckpt_path=logs/train/runs/.../checkpoints/best.ckpt output=model.onnx
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

import hydra
import onnx
import torch
from omegaconf import DictConfig

from ctcocr.evaluation import load_module
from ctcocr.module import RecognizerModule
from ctcocr.onnx_runtime import INPUT_NAMES, OUTPUT_NAMES, OnnxRecognizer, recognizer_metadata
from ctcocr.runtime import configure, user_errors
from ctcocr.train import CONFIG_DIR

DYNAMIC_AXES = {
    "images": {0: "batch", 3: "width"},
    "widths": {0: "batch"},
    "log_probs": {0: "frames", 1: "batch"},
    "lengths": {0: "batch"},
}


class ParityError(RuntimeError):
    """The exported model's outputs differ from PyTorch's."""


def export_onnx(module: RecognizerModule, path: str | Path, opset: int = 17) -> Path:
    """Write ``module``'s network and frame counting to ``path`` as ONNX, with the charset and
    input height in the metadata; returns the path. The module is moved to the CPU in eval mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.cpu().eval()
    height = module.model.backbone.height
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
            module, example, str(path), dynamo=False, opset_version=opset,
            input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
            dynamic_axes=DYNAMIC_AXES,
        )
    model = onnx.load(str(path))
    metadata = recognizer_metadata(module.charset, height, dict(module.hparams.model))
    onnx.helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def parity_error(
    module: RecognizerModule, recognizer: OnnxRecognizer, widths: Iterable[int],
    batch_size: int = 3, seed: int = 0,
) -> float:
    """Largest |log-prob difference| between PyTorch and ONNX Runtime over random batches of each
    image width (samples of random true widths); infinite if the frame counts differ."""
    generator = torch.Generator().manual_seed(seed)
    height = module.model.backbone.height
    worst = 0.0
    for width in widths:
        images = torch.rand(batch_size, 1, height, width, generator=generator) * 2 - 1
        true_widths = torch.randint(1, width + 1, (batch_size,), generator=generator)
        true_widths[0] = width
        with torch.inference_mode():
            expected, expected_lengths = module(images, true_widths)
        log_probs, lengths = recognizer(images, true_widths)
        if log_probs.shape != expected.shape or not torch.equal(lengths, expected_lengths):
            return float("inf")
        worst = max(worst, float((log_probs - expected).abs().max()))
    return worst


def run(cfg: DictConfig) -> Path:
    """Export ``cfg.ckpt_path`` to ``cfg.output`` (default: beside it, suffix .onnx), check it."""
    configure(cfg)
    module = load_module(cfg.ckpt_path)
    output = Path(cfg.output) if cfg.get("output") else Path(cfg.ckpt_path).with_suffix(".onnx")
    export_onnx(module, output, cfg.opset)
    if cfg.verify_widths:
        error = parity_error(module, OnnxRecognizer(output), cfg.verify_widths)
        if not error <= cfg.atol:
            raise ParityError(f"{output}: ONNX Runtime differs from PyTorch by {error:.3g} "
                              f"(tolerance {cfg.atol}) on widths {list(cfg.verify_widths)}")
        print(f"wrote {output} (max |log-prob difference| to PyTorch {error:.2e})")
    else:
        print(f"wrote {output}")
    return output


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
@user_errors
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except ParityError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()

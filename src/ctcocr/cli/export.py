"""ctcocr-export: write a trained recognizer as one self-contained ONNX file (configs/export.yaml).

See :mod:`ctcocr.recognition.export` for the graph's inputs and outputs. After writing, ONNX
Runtime is checked against PyTorch on random lines of several widths. ``quantize=int8`` writes an
8-bit copy instead (:func:`~ctcocr.recognition.export.quantize_int8`; the float32 export it comes
from is checked as usual, the copy's difference is printed). Example::

    ctcocr-export ckpt_path=logs/train/runs/.../checkpoints/best.ckpt output=model.onnx
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ctcocr.cli.common import configure, user_errors
from ctcocr.recognition import OnnxRecognizer, Recognizer
from ctcocr.recognition.export import (
    QUANTIZATIONS,
    ParityError,
    export_onnx,
    parity_error,
    quantize_int8,
)
from ctcocr.resources import CONFIG_DIR


def run(cfg: DictConfig) -> Path:
    """Export ``cfg.ckpt_path`` to ``cfg.output`` (default: beside it, suffix .onnx, or .int8.onnx
    with ``quantize=int8``), check it."""
    configure(cfg)
    quantize = cfg.get("quantize")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be null or one of {', '.join(QUANTIZATIONS)}, "
                         f"got {quantize!r}")
    recognizer = Recognizer.from_checkpoint(cfg.ckpt_path)
    suffix = f".{quantize}.onnx" if quantize else ".onnx"
    output = Path(cfg.output) if cfg.get("output") else Path(cfg.ckpt_path).with_suffix(suffix)
    if quantize:
        with tempfile.TemporaryDirectory() as folder:
            float32 = export_onnx(recognizer, Path(folder) / "float32.onnx", cfg.opset)
            float32_error = checked_error(recognizer, float32, cfg)
            quantize_int8(float32, output)
        error = parity_error(recognizer, OnnxRecognizer(output), list(cfg.verify_widths) or [160])
        checked = "" if float32_error is None else f"; float32 export: {float32_error:.2e}"
        print(f"wrote {output} ({quantize}: max |log-prob difference| to PyTorch {error:.2e}"
              f"{checked})")
        return output
    export_onnx(recognizer, output, cfg.opset)
    error = checked_error(recognizer, output, cfg)
    print(f"wrote {output}" if error is None
          else f"wrote {output} (max |log-prob difference| to PyTorch {error:.2e})")
    return output


def checked_error(recognizer: Recognizer, path: Path, cfg: DictConfig) -> float | None:
    """The largest |log-prob difference| between the export ``path`` and PyTorch on
    ``cfg.verify_widths`` (None when that is empty); ParityError beyond ``cfg.atol``."""
    if not cfg.verify_widths:
        return None
    error = parity_error(recognizer, OnnxRecognizer(path), cfg.verify_widths)
    if not error <= cfg.atol:
        raise ParityError(f"{path}: ONNX Runtime differs from PyTorch by {error:.3g} "
                          f"(tolerance {cfg.atol}) on widths {list(cfg.verify_widths)}")
    return error


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

"""ctcocr-export: write a trained recognizer as one self-contained ONNX file (configs/export.yaml).

See :mod:`ctcocr.recognition.export` for the graph's inputs and outputs. After writing, ONNX
Runtime is checked against PyTorch on random lines of several widths. Example::

    ctcocr-export ckpt_path=logs/train/runs/.../checkpoints/best.ckpt output=model.onnx
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ctcocr.cli.common import configure, user_errors
from ctcocr.recognition import OnnxRecognizer, Recognizer
from ctcocr.recognition.export import ParityError, export_onnx, parity_error
from ctcocr.resources import CONFIG_DIR


def run(cfg: DictConfig) -> Path:
    """Export ``cfg.ckpt_path`` to ``cfg.output`` (default: beside it, suffix .onnx), check it."""
    configure(cfg)
    recognizer = Recognizer.from_checkpoint(cfg.ckpt_path)
    output = Path(cfg.output) if cfg.get("output") else Path(cfg.ckpt_path).with_suffix(".onnx")
    export_onnx(recognizer, output, cfg.opset)
    if cfg.verify_widths:
        error = parity_error(recognizer, OnnxRecognizer(output), cfg.verify_widths)
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

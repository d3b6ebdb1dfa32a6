"""ctcocr-predict: read text lines from image files or folders (``configs/predict.yaml``).

Prints ``path<TAB>text<TAB>confidence`` per image (or writes it to ``output``). A file that cannot
be read is reported and skipped; the run goes on and lists the failures at the end. Example::

    ctcocr-predict ckpt_path=model.ckpt inputs=scans/lines/
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import NamedTuple
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, ListConfig
from PIL import Image, UnidentifiedImageError

from ctcocr.data.collate import EncodedLine, LineCollate
from ctcocr.data.transforms import LineTransform
from ctcocr.eval import load_module
from ctcocr.evaluation import predict_batches
from ctcocr.module import RecognizerModule
from ctcocr.runtime import configure, user_errors
from ctcocr.train import CONFIG_DIR

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def find_images(inputs: str | Iterable[str]) -> list[Path]:
    """Image files named by ``inputs`` (files, or folders searched recursively), in a stable order."""
    paths = []
    for item in [inputs] if isinstance(inputs, str) else inputs:
        path = Path(item)
        if path.is_dir():
            paths += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            paths.append(path)
        else:
            raise FileNotFoundError(f"no such image file or folder: {path}")
    return paths


def load_line(path: Path, transform: LineTransform) -> EncodedLine:
    """An image file -> an unlabelled line ready for batching; raises ValueError naming the file."""
    try:
        with Image.open(path) as image:
            image.load()
            tensor, squeezed = transform(image)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise ValueError(f"{path}: cannot read the image ({error})") from None
    return EncodedLine(tensor, torch.zeros(0, dtype=torch.long), "", str(path), squeezed)


class Prediction(NamedTuple):
    """What predict reports per file: the text and its confidence, or why the file was not read."""

    path: str
    text: str | None
    confidence: float | None
    error: str | None = None


def recognize(
    module: RecognizerModule, paths: list[Path], batch_size: int = 32, device: str = "cpu"
) -> Iterator[Prediction]:
    """Recognize each image; unreadable files give a Prediction with ``error`` set, in input order."""
    transform = LineTransform(height=module.model.backbone.height)
    collate = LineCollate(height=transform.height)
    for start in range(0, len(paths), batch_size):
        lines, failures = [], []
        for path in paths[start : start + batch_size]:
            try:
                lines.append(load_line(path, transform))
            except ValueError as error:
                failures.append(Prediction(str(path), None, None, str(error)))
        yield from failures
        if lines:
            (outputs,) = predict_batches(module, [collate(lines)], device)
            for source, text, confidence in zip(
                outputs["sources"], outputs["predictions"], outputs["confidences"].tolist()
            ):
                yield Prediction(source, text, confidence)


def run(cfg: DictConfig) -> int:
    """Recognize every image; returns the number of files that could not be read."""
    configure(cfg)
    module = load_module(cfg.ckpt_path)
    inputs = list(cfg.inputs) if isinstance(cfg.inputs, ListConfig) else str(cfg.inputs)
    paths = find_images(inputs)
    output = open(cfg.output, "w", encoding="utf-8") if cfg.get("output") else sys.stdout
    failures = []
    try:
        for prediction in recognize(module, paths, cfg.batch_size, cfg.device):
            if prediction.error:
                failures.append(prediction.error)
            else:
                print(f"{prediction.path}\t{prediction.text}\t{prediction.confidence:.4f}", file=output)
    finally:
        if output is not sys.stdout:
            output.close()
    if failures:
        print(f"{len(failures)} of {len(paths)} files could not be read:", file=sys.stderr)
        for reason in failures:
            print(f"  {reason}", file=sys.stderr)
    return len(failures)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
@user_errors
def main(cfg: DictConfig) -> None:
    if run(cfg):
        raise SystemExit(1)


if __name__ == "__main__":
    main()

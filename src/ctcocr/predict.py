"""ctcocr-predict: read text lines from image files or folders (``configs/predict.yaml``).

Prints ``path<TAB>text<TAB>confidence`` per image (or JSON lines with each character's pixel span
when ``format=json``), to stdout or ``output``. A file that cannot be read is reported and skipped;
the run goes on and lists the failures at the end (exit code 1). Example::

    ctcocr-predict ckpt_path=model.ckpt inputs=scans/lines/ decoder=beam format=json \
        boxes_dir=boxes/
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Union

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig
from PIL import Image, ImageDraw, UnidentifiedImageError

from ctcocr.data.collate import EncodedLine, LineCollate
from ctcocr.data.transforms import LineTransform
from ctcocr.decoding import TextDecoder, character_spans
from ctcocr.evaluation import inference_context, load_module
from ctcocr.module import RecognizerModule
from ctcocr.runtime import configure, user_errors
from ctcocr.train import CONFIG_DIR

if TYPE_CHECKING:
    from ctcocr.onnx_runtime import OnnxRecognizer

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


class Prediction(NamedTuple):
    """What predict reports per file: text, confidence and character spans, or why it failed."""

    path: str
    text: str | None = None
    confidence: float | None = None
    spans: list[tuple[float, float]] | None = None
    """Per character (x_start, x_end) in pixels of the original image."""
    error: str | None = None


def find_images(inputs: str | Iterable[str]) -> list[Path]:
    """Image files named by ``inputs`` (files, or folders searched recursively), sorted."""
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


def load_line(path: Path, transform: LineTransform) -> tuple[EncodedLine, float]:
    """An image file -> an unlabelled line ready for batching, and the factor from network-input
    pixels back to the file's pixels; raises ValueError naming the file."""
    try:
        with Image.open(path) as image:
            image.load()
            tensor, squeezed = transform(image)
            content = min(transform.natural_width(*image.size), transform.max_width)
            scale = image.width / content
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise ValueError(f"{path}: cannot read the image ({error})") from None
    return EncodedLine(tensor, torch.zeros(0, dtype=torch.long), "", str(path), squeezed), scale


Recognizer = Union[RecognizerModule, "OnnxRecognizer"]


def load_recognizer(path: str | Path) -> Recognizer:
    """A checkpoint written by ctcocr-train, or an ONNX file written by ctcocr-export."""
    if str(path).endswith(".onnx"):
        from ctcocr.onnx_runtime import OnnxRecognizer  # onnxruntime is an optional extra

        return OnnxRecognizer(path)
    return load_module(path)


def recognize(
    module: Recognizer,
    paths: list[Path],
    decoder: TextDecoder,
    batch_size: int = 32,
    device: str = "cpu",
    spans: bool = False,
) -> Iterator[Prediction]:
    """Recognize each image with a checkpoint's module or an ONNX file (CPU); unreadable files
    give a Prediction with ``error`` set."""
    if isinstance(module, RecognizerModule):
        module = module.to(device).eval()
    transform = LineTransform(height=module.height)
    collate = LineCollate(height=transform.height)
    for start in range(0, len(paths), batch_size):
        lines, scales = [], []
        for path in paths[start : start + batch_size]:
            try:
                line, scale = load_line(path, transform)
            except ValueError as error:
                yield Prediction(str(path), error=str(error))
                continue
            lines.append(line)
            scales.append(scale)
        if not lines:
            continue
        batch = collate(lines)
        with inference_context(device, "32-true"):
            log_probs, lengths = module(batch["images"].to(device), batch["widths"].to(device))
        decoded = decoder(log_probs, lengths)
        boxes = (
            character_spans(log_probs, lengths, decoded.tokens, batch["widths"])
            if spans
            else [None] * len(lines)
        )
        for source, text, confidence, box, scale in zip(
            batch["sources"], decoded.texts, decoded.confidences.tolist(), boxes, scales
        ):
            pixels = None if box is None else [(x0 * scale, x1 * scale) for x0, x1 in box]
            yield Prediction(source, text, confidence, pixels)


def draw_boxes(prediction: Prediction, folder: Path) -> Path:
    """Save the image with a box around each character's span to ``folder`` (PNG)."""
    with Image.open(prediction.path) as image:
        canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    for x0, x1 in prediction.spans or []:
        draw.rectangle([x0, 0, max(x0, x1 - 1), canvas.height - 1], outline=(220, 0, 0))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{Path(prediction.path).stem}.png"
    canvas.save(path)
    return path


def format_prediction(prediction: Prediction, as_json: bool) -> str:
    if not as_json:
        return f"{prediction.path}\t{prediction.text}\t{prediction.confidence:.4f}"
    chars = [
        {"char": char, "x0": round(x0, 1), "x1": round(x1, 1)}
        for char, (x0, x1) in zip(prediction.text, prediction.spans or [])
    ]
    return json.dumps(
        {
            "path": prediction.path,
            "text": prediction.text,
            "confidence": round(prediction.confidence, 6),
            "chars": chars,
        }
    )


def run(cfg: DictConfig) -> int:
    """Recognize every image; returns the number of files that could not be read."""
    configure(cfg)
    if cfg.format not in ("tsv", "json"):
        raise ValueError(f"format must be 'tsv' or 'json', got {cfg.format!r}")
    module = load_recognizer(cfg.ckpt_path)
    decoder = instantiate(cfg.decoder, charset=module.charset)
    inputs = list(cfg.inputs) if isinstance(cfg.inputs, ListConfig) else str(cfg.inputs)
    paths = find_images(inputs)
    boxes_dir = Path(cfg.boxes_dir) if cfg.get("boxes_dir") else None
    spans = cfg.format == "json" or boxes_dir is not None
    failures = []
    with contextlib.ExitStack() as stack:
        output = (stack.enter_context(open(cfg.output, "w", encoding="utf-8"))
                  if cfg.get("output") else sys.stdout)
        for prediction in recognize(module, paths, decoder, cfg.batch_size, cfg.device, spans):
            if prediction.error:
                failures.append(prediction.error)
                continue
            print(format_prediction(prediction, cfg.format == "json"), file=output)
            if boxes_dir is not None:
                draw_boxes(prediction, boxes_dir)
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

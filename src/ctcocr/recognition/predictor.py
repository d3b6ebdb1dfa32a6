"""Read text lines from image files: load, prepare and batch them, run a recognizer, decode, and
locate each character; unreadable files are reported, not fatal."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import torch
from PIL import Image, ImageDraw, UnidentifiedImageError

from ctcocr.data.collate import EncodedLine, LineCollate
from ctcocr.data.transforms import LineTransform
from ctcocr.recognition.decoding import TextDecoder, character_spans
from ctcocr.recognition.inference import inference_context, on_device
from ctcocr.recognition.recognizer import LineReader

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


def recognize(
    recognizer: LineReader,
    paths: list[Path],
    decoder: TextDecoder,
    batch_size: int = 32,
    device: str = "cpu",
    precision: str = "32-true",
    spans: bool = False,
) -> Iterator[Prediction]:
    """Recognize each image with a checkpoint's recognizer (on ``device`` at ``precision``) or an
    ONNX file (CPU); unreadable files give a Prediction with ``error`` set."""
    recognizer = on_device(recognizer, device)
    transform = LineTransform(**recognizer.preprocessing)
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
        with inference_context(device, precision):
            log_probs, lengths = recognizer(batch["images"].to(device),
                                            batch["widths"].to(device))
        log_probs = log_probs.float()
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


def box_paths(paths: list[Path], folder: Path) -> list[Path]:
    """One distinct picture path in ``folder`` per image: the image's path below the images'
    common folder, with ``.png`` appended (``a/x.jpg`` -> ``folder/a/x.jpg.png``), so that images
    of the same name in different folders, or of different suffixes, never overwrite each other."""
    if not paths:
        return []
    resolved = [path.resolve() for path in paths]
    root = Path(os.path.commonpath([path.parent for path in resolved]))
    return [folder / f"{path.relative_to(root)}.png" for path in resolved]


def draw_boxes(prediction: Prediction, path: Path) -> Path:
    """Save the image with a box around each character's span to ``path`` (PNG)."""
    with Image.open(prediction.path) as image:
        canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    for x0, x1 in prediction.spans or []:
        draw.rectangle([x0, 0, max(x0, x1 - 1), canvas.height - 1], outline=(220, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, format="PNG")
    return path


def format_prediction(prediction: Prediction, as_json: bool) -> str:
    if not as_json:
        return f"{prediction.path}\t{prediction.text}\t{prediction.confidence:.6g}"
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

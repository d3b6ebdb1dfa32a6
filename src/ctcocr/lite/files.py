"""Image files in, predictions out, for every ``ctcocr-predict`` path (checkpoint or ONNX): finding
the images, reading and preparing each one, printing or writing the results, drawing the boxes."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from PIL import Image, ImageDraw, UnidentifiedImageError

from ctcocr.lite.preprocess import PreparedLine, prepare_line

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


def read_line(path: Path, preprocessing: Mapping[str, Any]) -> PreparedLine:
    """An image file -> the prepared line (:func:`~ctcocr.lite.preprocess.prepare_line` with
    ``preprocessing``); raises ValueError naming the file when it cannot be read."""
    try:
        with Image.open(path) as image:
            image.load()
            return prepare_line(image, **preprocessing)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise ValueError(f"{path}: cannot read the image ({error})") from None


def pixel_spans(frame_spans: list[tuple[int, int]], pixels_per_frame: float, scale: float
                ) -> list[tuple[float, float]]:
    """Inclusive frame spans -> (x_start, x_end) in the original image's pixels: ``frame *
    pixels_per_frame`` in network-input pixels, times ``scale`` back to the file's pixels."""
    return [(first * pixels_per_frame * scale, (last + 1) * pixels_per_frame * scale)
            for first, last in frame_spans]


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
    """``path<TAB>text<TAB>confidence``, or a JSON object with each character's pixel span."""
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


def write_predictions(predictions: Iterable[Prediction], paths: list[Path], as_json: bool,
                      output: str | None = None, boxes_dir: str | None = None) -> int:
    """Print each prediction (to ``output`` when given), draw its boxes into ``boxes_dir`` when
    given, and list the files that could not be read on stderr at the end; returns their number."""
    boxes = dict(zip(map(str, paths), box_paths(paths, Path(boxes_dir)))) if boxes_dir else None
    failures = []
    with contextlib.ExitStack() as stack:
        stream = stack.enter_context(open(output, "w", encoding="utf-8")) if output else sys.stdout
        for prediction in predictions:
            if prediction.error:
                failures.append(prediction.error)
                continue
            print(format_prediction(prediction, as_json), file=stream)
            if boxes is not None:
                draw_boxes(prediction, boxes[prediction.path])
    if failures:
        print(f"{len(failures)} of {len(paths)} files could not be read:", file=sys.stderr)
        for reason in failures:
            print(f"  {reason}", file=sys.stderr)
    return len(failures)

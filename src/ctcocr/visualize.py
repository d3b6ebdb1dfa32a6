"""Pictures of what the recognizer reads, for TensorBoard and reports."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

_GREEN, _RED, _GRAY = (0, 140, 0), (200, 0, 0), (90, 90, 90)


def to_pil(image: Tensor, width: int | None = None) -> Image.Image:
    """A normalised image (1, H, W) in [-1, 1] -> grayscale PIL image cropped to ``width`` columns."""
    pixels = ((image[0, :, :width].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(pixels.numpy(), mode="L")


def prediction_grid(
    images: Tensor, widths: Tensor, predictions: Sequence[str], labels: Sequence[str]
) -> Tensor:
    """Images (N, 1, H, W) with their predictions (green if exact, red if not) and labels.

    Returns an RGB tensor (3, H_grid, W_grid) in [0, 1], one row per sample.
    """
    font = ImageFont.load_default(size=14)
    rows = []
    for image, width, prediction, label in zip(images, widths.tolist(), predictions, labels):
        line = to_pil(image, int(width)).convert("RGB")
        caption_width = int(max(font.getlength(prediction), font.getlength(label))) + 80
        row = Image.new("RGB", (max(line.width, caption_width) + 8, line.height + 40), "white")
        row.paste(line, (4, 2))
        draw = ImageDraw.Draw(row)
        draw.text((4, line.height + 4), f"pred: {prediction}", font=font,
                  fill=_GREEN if prediction == label else _RED)
        draw.text((4, line.height + 21), f"gt:   {label}", font=font, fill=_GRAY)
        rows.append(row)
    grid = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    top = 0
    for row in rows:
        grid.paste(row, (0, top))
        top += row.height
    return torch.from_numpy(np.asarray(grid).copy()).permute(2, 0, 1).float() / 255.0

"""Line image preparation in NumPy and Pillow, the one implementation behind training's
:class:`~ctcocr.data.transforms.LineTransform` and the torch-free ONNX path: grayscale, dark-on-light
contrast normalisation, keep-ratio resize to a fixed height, width limits, [-1, 1], batch padding."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

#: What recognizers saved before a setting existed were trained with (their files lack the key).
LEGACY_PREPROCESSING = {"normalize": False}
#: The settings a recognizer carries: the arguments of :func:`prepare_line`.
PREPROCESSING_KEYS = ("height", "min_width", "max_width", "normalize")
#: Batch widths are rounded up to a multiple of this, so that few distinct widths reach the model.
WIDTH_MULTIPLE = 16

#: Full-scale value of the high-bit-depth grayscale modes, which Pillow's convert("L") clips.
_FULL_SCALE = {"I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I;16N": 65535.0}
#: Share of the pixels taken as ink by :func:`normalize_contrast` (a text line is mostly paper).
INK_SHARE = 0.02
MIN_CONTRAST = 8  # gray levels; a flatter image is left as it is


class PreparedLine(NamedTuple):
    """A line ready for batching."""

    pixels: np.ndarray
    """(height, W) float32 in [-1, 1], white = 1; W >= min_width."""
    squeezed: bool
    """The image was wider than ``max_width`` and was squeezed to it."""
    scale: float
    """Factor from network-input pixels back to the original image's pixels."""


def preprocessing_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A recognizer's stored preprocessing -> the arguments of :func:`prepare_line` (settings
    saved before a key existed get its legacy value)."""
    merged = {**LEGACY_PREPROCESSING, **settings}
    missing = sorted(set(PREPROCESSING_KEYS) - set(merged))
    if missing:
        raise ValueError(f"preprocessing lacks {missing}")
    return {key: merged[key] for key in PREPROCESSING_KEYS}


def to_grayscale(image: Image.Image) -> Image.Image:
    """Any PIL image -> mode "L"; transparent areas are drawn on white, 16-bit and 32-bit
    integer images are scaled from their full range, float images from [0, 1] (or their own
    range when it is wider). Raises ValueError for an image with no pixels."""
    if image.width == 0 or image.height == 0:
        raise ValueError(f"the image is empty ({image.width}x{image.height} pixels)")
    if image.mode == "L":
        return image
    if image.mode.startswith("I") or image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        full = _FULL_SCALE.get(image.mode)
        if full is None:  # "I" (often 16-bit data in 32 bits) or "F"
            top = float(pixels.max(initial=0.0))
            full = 1.0 if image.mode == "F" and top <= 1.0 else 255.0 if top <= 255 else 65535.0
        return Image.fromarray(np.clip(pixels * (255.0 / full), 0, 255).round().astype(np.uint8))
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return image.convert("L")


def gray_quantiles(image: Image.Image, *shares: float) -> list[int]:
    """The gray levels below which these shares of a mode "L" image's pixels lie (histogram only)."""
    cumulative = np.cumsum(image.histogram())
    return [int(np.searchsorted(cumulative, share * cumulative[-1])) for share in shares]


def normalize_contrast(image: Image.Image) -> Image.Image:
    """Mode "L" line image -> dark ink on white paper over the full range.

    The paper is the median gray level; when the darkest ``INK_SHARE`` of the pixels lies
    closer to it than the lightest do, the text is light on dark and the image is inverted.
    Then the paper level maps to 255 and the ink level (the ``INK_SHARE`` quantile) to 0,
    linearly, clipping beyond. Uses the histogram only: about 0.1 ms a line.
    """
    dark, paper, light = gray_quantiles(image, INK_SHARE, 0.5, 1 - INK_SHARE)
    levels = np.arange(256, dtype=np.float64)
    if paper - dark < light - paper:  # light ink on dark paper
        levels = 255 - levels
        dark, paper = 255 - light, 255 - paper
    if paper - dark >= MIN_CONTRAST:
        levels = np.clip(np.rint((levels - dark) * (255.0 / (paper - dark))), 0, 255)
    return image.point(levels.astype(np.uint8).tolist())


def natural_width(width: int, height: int, target_height: int) -> int:
    """Width of a ``width`` x ``height`` image after the keep-ratio resize to ``target_height``,
    before the width limits."""
    return max(1, round(width * target_height / height))


def background(pixels: np.ndarray) -> float:
    """Background value of an (H, W) image: the median of its border pixels (the lower of the
    two middle values for an even count, as ``torch.median``)."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return float(np.partition(border, (border.size - 1) // 2)[(border.size - 1) // 2])


def pad_right(pixels: np.ndarray, width: int) -> np.ndarray:
    """Right-pad an (H, W) image with its background to (H, max(W, width))."""
    missing = width - pixels.shape[-1]
    if missing <= 0:
        return pixels
    return np.pad(pixels, ((0, 0), (0, missing)), constant_values=background(pixels))


def prepare_line(image: Image.Image, height: int = 32, min_width: int = 32,
                 max_width: int = 1024, normalize: bool = False) -> PreparedLine:
    """PIL image -> :class:`PreparedLine`: grayscale, :func:`normalize_contrast` if
    ``normalize``, resize to ``height`` keeping the aspect ratio (Pillow's bilinear filter,
    antialiased), squeezed to ``max_width`` when wider, right-padded with its background to
    ``min_width``, scaled to [-1, 1]."""
    if not 0 < min_width <= max_width:
        raise ValueError(f"need 0 < min_width <= max_width, got {min_width} and {max_width}")
    gray = to_grayscale(image)
    if normalize:
        gray = normalize_contrast(gray)
    natural = natural_width(gray.width, gray.height, height)
    width = min(natural, max_width)
    if (gray.width, gray.height) != (width, height):
        gray = gray.resize((width, height), resample=Image.Resampling.BILINEAR)
    pixels = np.asarray(gray, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)
    return PreparedLine(pad_right(pixels, min_width), natural > max_width, image.width / width)


def round_up(width: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``width``."""
    return multiple * math.ceil(width / multiple)


def pad_batch(lines: Sequence[np.ndarray], width_multiple: int = WIDTH_MULTIPLE
              ) -> tuple[np.ndarray, np.ndarray]:
    """Prepared (H, W_i) images -> a batch (B, 1, H, W_pad) float32, each right-padded with its
    own background to the widest rounded up to ``width_multiple``, and the widths (B,) int64."""
    widths = np.array([line.shape[-1] for line in lines], dtype=np.int64)
    height = lines[0].shape[0] if lines else 0
    batch = np.empty((len(lines), 1, height, round_up(int(widths.max(initial=0)), width_multiple)),
                     dtype=np.float32)
    for row, (line, width) in enumerate(zip(lines, widths)):
        batch[row, 0, :, :width] = line
        batch[row, 0, :, width:] = background(line)
    return batch, widths


def width_batches(widths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices of lines grouped into batches of up to ``batch_size`` lines of similar width
    (sorted by width, so that little padding is computed), narrowest first."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(widths)), key=lambda index: widths[index])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]

"""Image preparation: grayscale, dark-on-light contrast normalisation, keep-ratio resize to a fixed
height, width limits, [-1, 1]."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch import Tensor

Augment = Callable[[Image.Image], Image.Image]
#: What recognizers saved before a setting existed were trained with (their files lack the key).
LEGACY_PREPROCESSING = {"normalize": False}


class LineTransform:
    """PIL image -> (1, height, W) float32 tensor in [-1, 1], white = 1.

    With ``normalize``, the grayscale image first goes through :func:`normalize_contrast` (dark
    ink on white paper, full range). The width keeps the aspect ratio, ``W = round(w * height /
    h)``, then a wider image is squeezed to ``max_width`` and a narrower one is right-padded with
    its background to ``min_width``. Training, evaluation, prediction and the ONNX path all build
    this transform from the recognizer's preprocessing settings.

    Args:
        augment: optional PIL -> PIL transform applied first (train-time augmentation hook).
    """

    def __init__(
        self,
        height: int = 32,
        min_width: int = 32,
        max_width: int = 1024,
        normalize: bool = False,
        augment: Augment | None = None,
    ):
        if not 0 < min_width <= max_width:
            raise ValueError(f"need 0 < min_width <= max_width, got {min_width} and {max_width}")
        self.height = height
        self.min_width = min_width
        self.max_width = max_width
        self.normalize = normalize
        self.augment = augment

    def natural_width(self, width: int, height: int) -> int:
        """Width after the keep-ratio resize to ``self.height``, before the width limits."""
        return max(1, round(width * self.height / height))

    def __call__(self, image: Image.Image) -> tuple[Tensor, bool]:
        """Returns the (1, height, W) tensor and whether the image was squeezed to ``max_width``."""
        if self.augment is not None:
            image = self.augment(image)
        image = to_grayscale(image)
        if self.normalize:
            image = normalize_contrast(image)
        natural = self.natural_width(*image.size)
        width = min(natural, self.max_width)
        resized = TF.resize(image, [self.height, width], antialias=True)
        tensor = TF.pil_to_tensor(resized).float().div_(127.5).sub_(1.0)
        return pad_right(tensor, self.min_width), natural > self.max_width


#: Full-scale value of the high-bit-depth grayscale modes, which Pillow's convert("L") clips.
_FULL_SCALE = {"I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I;16N": 65535.0}


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


#: Share of the pixels taken as ink by :func:`normalize_contrast` (a text line is mostly paper).
INK_SHARE = 0.02
MIN_CONTRAST = 8  # gray levels; a flatter image is left as it is


def normalize_contrast(image: Image.Image) -> Image.Image:
    """Mode "L" line image -> dark ink on white paper over the full range.

    The paper is the median gray level; when the darkest ``INK_SHARE`` of the pixels lies
    closer to it than the lightest do, the text is light on dark and the image is inverted.
    Then the paper level maps to 255 and the ink level (the ``INK_SHARE`` quantile) to 0,
    linearly, clipping beyond. Uses the histogram only: about 0.1 ms a line.
    """
    cumulative = np.cumsum(image.histogram())
    total = cumulative[-1]
    dark = int(np.searchsorted(cumulative, INK_SHARE * total))
    paper = int(np.searchsorted(cumulative, 0.5 * total))
    light = int(np.searchsorted(cumulative, (1 - INK_SHARE) * total))
    if paper - dark < light - paper:  # light ink on dark paper
        image = image.point(lambda value: 255 - value)
        dark, paper = 255 - light, 255 - paper
    if paper - dark < MIN_CONTRAST:
        return image
    scale = 255.0 / (paper - dark)
    return image.point(lambda value: min(255, max(0, round((value - dark) * scale))))


def background(image: Tensor) -> Tensor:
    """Background value of a (1, H, W) image: the median of its border pixels. 0-d tensor."""
    border = torch.cat([image[0, 0], image[0, -1], image[0, :, 0], image[0, :, -1]])
    return border.median()


def pad_right(image: Tensor, width: int) -> Tensor:
    """Right-pad a (1, H, W) image with its background to (1, H, max(W, width))."""
    missing = width - image.size(-1)
    if missing <= 0:
        return image
    return F.pad(image, (0, missing), value=float(background(image)))


def round_up(width: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``width``."""
    return multiple * math.ceil(width / multiple)

"""Image preparation: grayscale, dark-on-light contrast normalisation, keep-ratio resize to a fixed
height, width limits, [-1, 1]. The pixel work is :mod:`ctcocr.lite.preprocess` (NumPy and Pillow),
shared with the torch-free ONNX path; this module wraps it in tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ctcocr.lite import preprocess
from ctcocr.lite.preprocess import (  # noqa: F401 - public names of this module
    INK_SHARE,
    LEGACY_PREPROCESSING,
    MIN_CONTRAST,
    normalize_contrast,
    round_up,
    to_grayscale,
)


class LineTransform:
    """PIL image -> (1, height, W) float32 tensor in [-1, 1], white = 1.

    With ``normalize``, the grayscale image first goes through :func:`normalize_contrast` (dark
    ink on white paper, full range). The width keeps the aspect ratio, ``W = round(w * height /
    h)``, then a wider image is squeezed to ``max_width`` and a narrower one is right-padded with
    its background to ``min_width``. Training, evaluation, prediction and the ONNX path all build
    this transform from the recognizer's preprocessing settings (train-time augmentation is
    :mod:`ctcocr.data.augment`, applied to the dataset's samples before this).
    """

    def __init__(
        self,
        height: int = 32,
        min_width: int = 32,
        max_width: int = 1024,
        normalize: bool = False,
    ):
        if not 0 < min_width <= max_width:
            raise ValueError(f"need 0 < min_width <= max_width, got {min_width} and {max_width}")
        self.height = height
        self.min_width = min_width
        self.max_width = max_width
        self.normalize = normalize

    def natural_width(self, width: int, height: int) -> int:
        """Width after the keep-ratio resize to ``self.height``, before the width limits."""
        return preprocess.natural_width(width, height, self.height)

    def __call__(self, image: Image.Image) -> tuple[Tensor, bool]:
        """Returns the (1, height, W) tensor and whether the image was squeezed to ``max_width``."""
        line = preprocess.prepare_line(image, self.height, self.min_width, self.max_width,
                                       self.normalize)
        return torch.from_numpy(line.pixels)[None], line.squeezed


def background(image: Tensor) -> Tensor:
    """Background value of a (1, H, W) image: the median of its border pixels. 0-d tensor."""
    return torch.tensor(preprocess.background(image[0].numpy()), dtype=image.dtype)


def pad_right(image: Tensor, width: int) -> Tensor:
    """Right-pad a (1, H, W) image with its background to (1, H, max(W, width))."""
    missing = width - image.size(-1)
    if missing <= 0:
        return image
    return F.pad(image, (0, missing), value=float(background(image)))

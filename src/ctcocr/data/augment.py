"""Training-time augmentation of real text-line images (folder, LMDB and other file datasets).

The synthetic renderer degrades its own lines (:mod:`ctcocr.data.synthetic.degrade`); real lines
get the same print, scan and camera effects through :func:`degrade`, plus what varies between
writers and line segmenters: slant and horizontal stretch, elastic distortion, margins, global
contrast and brightness. Plain Pillow and numpy.

Deterministic: the augmentation of sample ``index`` of dataset part ``part`` in epoch ``epoch``
draws from ``numpy.random.default_rng([seed, part, epoch, index])`` only, so it is the same in any
worker, order or resumed run. The epoch reaches DataLoader workers (persistent ones included)
through :class:`SharedEpoch`, which :class:`EpochLoader` sets from its sampler before each pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ctcocr.data.errors import BadImageError
from ctcocr.data.sample import Sample
from ctcocr.data.sampler import ResumableDataLoader
from ctcocr.data.synthetic import SyntheticLines
from ctcocr.data.synthetic.degrade import affine, degrade
from ctcocr.data.transforms import INK_SHARE, MIN_CONTRAST, to_grayscale
from ctcocr.lite.preprocess import gray_quantiles

ELASTIC_CELLS_PER_HEIGHT = 4  # elastic distortion: grid cells along the line height


def paper_and_ink(image: Image.Image) -> tuple[int, int]:
    """Gray levels of the paper (the median) and of the ink (the ``INK_SHARE`` quantile) of a
    mode "L" image of dark ink on lighter paper."""
    paper, ink = gray_quantiles(image, 0.5, INK_SHARE)
    return paper, ink


def jitter_margins(image: Image.Image, rng: np.random.Generator, amount: float, paper: int,
                   ink: int) -> Image.Image:
    """Each margin around the ink (pixels darker than halfway from ``paper`` to ``ink``) changed by
    up to ``amount`` times the image height, never cutting into the ink; ``paper`` fills."""
    pixels = np.asarray(image)
    dark = pixels < (paper + ink) / 2
    columns, rows = np.flatnonzero(dark.any(axis=0)), np.flatnonzero(dark.any(axis=1))
    if not len(columns):
        return image
    height, width = pixels.shape
    ink_box = (columns[0], rows[0], columns[-1] + 1, rows[-1] + 1)
    old = np.array([ink_box[0], ink_box[1], width - ink_box[2], height - ink_box[3]])
    new = np.maximum(0, old + np.rint(rng.uniform(-amount, amount, 4) * height)).astype(int)
    box = (ink_box[0] - new[0], ink_box[1] - new[1], ink_box[2] + new[2], ink_box[3] + new[3])
    canvas = Image.new("L", (box[2] - box[0], box[3] - box[1]), paper)
    canvas.paste(image, (-box[0], -box[1]))
    return canvas


def elastic(image: Image.Image, rng: np.random.Generator, displacement: float,
            fill: int) -> Image.Image:
    """Smooth random warp: displacements of up to ``displacement`` pixels drawn on a coarse grid
    (``ELASTIC_CELLS_PER_HEIGHT`` cells along the height, square cells), interpolated to every
    pixel, then bilinear resampling; ``fill`` covers what comes in from outside."""
    pixels = np.asarray(image, dtype=np.float32)
    height, width = pixels.shape
    cells = (ELASTIC_CELLS_PER_HEIGHT + 1,
             max(1, round(width * ELASTIC_CELLS_PER_HEIGHT / height)) + 1)
    coarse = rng.uniform(-displacement, displacement, (2, *cells)).astype(np.float32)
    dx, dy = (np.asarray(Image.fromarray(field).resize((width, height),
                                                       Image.Resampling.BILINEAR))
              for field in coarse)
    x = np.arange(width, dtype=np.float32)[None, :] + dx
    y = np.arange(height, dtype=np.float32)[:, None] + dy
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0

    def at(row: np.ndarray, column: np.ndarray) -> np.ndarray:
        inside = (row >= 0) & (row < height) & (column >= 0) & (column < width)
        values = pixels[np.clip(row, 0, height - 1), np.clip(column, 0, width - 1)]
        return np.where(inside, values, np.float32(fill))

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    warped = top * (1 - fy) + bottom * fy
    return Image.fromarray(np.clip(np.rint(warped), 0, 255).astype(np.uint8))


def contrast_brightness(image: Image.Image, contrast: float, brightness: float,
                        paper: int) -> Image.Image:
    """Gray levels scaled by ``contrast`` about the ``paper`` level, then shifted by
    ``brightness`` levels, clipped to [0, 255]."""
    table = np.clip(np.rint(paper + (np.arange(256) - paper) * contrast + brightness), 0, 255)
    return image.point(table.astype(np.uint8).tolist())


def _chance(rng: np.random.Generator, p: float) -> bool:
    return rng.random() < min(p, 1.0)


@dataclass(frozen=True)
class LineAugment:
    """Random distortions of a mode "L" line image of dark ink on lighter paper; the label stays
    true (no ink is cropped) and the image keeps roughly its size.

    Args:
        degradation: strength of :func:`ctcocr.data.synthetic.degrade.degrade` (ink spread or
            starvation, fading, curvature, rotation, resolution loss, blur, bilevel thresholding,
            stains, lighting, noise, JPEG), 0 for none.
        slant: shear of x by up to this times y (handwriting slant), with a 50% chance.
        stretch: horizontal scale exp(U(-stretch, stretch)), with a 50% chance.
        elastic: grid vertices move by up to this times the image height, with a 50% chance.
        margin: each margin around the ink changes by up to this times the image height.
        contrast: contrast about the paper level scaled by exp(U(-contrast, contrast)).
        brightness: gray levels shifted by up to this times 255.
    """

    degradation: float = 1.0
    slant: float = 0.2
    stretch: float = 0.15
    elastic: float = 0.04
    margin: float = 0.15
    contrast: float = 0.3
    brightness: float = 0.08

    def __call__(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        """Mode "L" image -> mode "L" image; draws from ``rng`` only."""
        paper, ink = paper_and_ink(image)
        if paper - ink < MIN_CONTRAST:  # nothing on the paper to measure the ink by
            return image
        image = jitter_margins(image, rng, self.margin, paper, ink)
        shear = float(rng.uniform(-self.slant, self.slant)) if _chance(rng, 0.5) else 0.0
        scale = math.exp(float(rng.uniform(-self.stretch, self.stretch))) if _chance(rng, 0.5) \
            else 1.0
        if shear or scale != 1.0:
            image = affine(image, 0.0, shear, scale, paper)
        if self.elastic and _chance(rng, 0.5):
            image = elastic(image, rng, self.elastic * image.height, paper)
        image = degrade(image, rng, self.degradation, paper, ink)
        factor = math.exp(float(rng.uniform(-self.contrast, self.contrast)))
        shift = float(rng.uniform(-self.brightness, self.brightness)) * 255
        return contrast_brightness(image, factor, shift, paper)


class SharedEpoch:
    """The training epoch as a shared-memory tensor: DataLoader workers (persistent ones too)
    see what the main process sets."""

    def __init__(self) -> None:
        self._value = torch.zeros((), dtype=torch.int64).share_memory_()

    def set(self, epoch: int) -> None:
        self._value.fill_(epoch)

    def get(self) -> int:
        return int(self._value)


class AugmentedLines(Dataset[Sample]):
    """The samples of ``dataset`` with ``augment`` applied to their images; labels, ``text(i)``
    and ``source(i)`` unchanged. Sample ``index`` in epoch ``epoch.get()`` is augmented with
    ``numpy.random.default_rng([seed, part, epoch, index])``."""

    def __init__(self, dataset: Dataset, augment: LineAugment, seed: int, epoch: SharedEpoch,
                 part: int = 0):
        if seed < 0 or part < 0:
            raise ValueError(f"seed and part must be >= 0, got {seed} and {part}")
        self.dataset, self.augment, self.seed, self.epoch, self.part = (dataset, augment, seed,
                                                                         epoch, part)

    def __len__(self) -> int:
        return len(self.dataset)

    def __repr__(self) -> str:
        return f"{self.dataset!r} augmented"

    def text(self, index: int) -> str:
        return self.dataset.text(index)

    def source(self, index: int) -> str:
        source = getattr(self.dataset, "source", None)
        return source(index) if callable(source) else self.dataset[index].source

    def __getitem__(self, index: int) -> Sample:
        sample = self.dataset[index]
        rng = np.random.default_rng([self.seed, self.part, self.epoch.get(), index])
        try:
            image = self.augment(to_grayscale(sample.image), rng)
        except ValueError as error:  # e.g. an empty image
            raise BadImageError(f"{sample.source}: {error}") from None
        return sample._replace(image=image)


def augmented(dataset: Dataset, augment: LineAugment | None, seed: int, epoch: SharedEpoch,
              part: int) -> Dataset:
    """``dataset`` as :class:`AugmentedLines`, unless ``augment`` is None or the dataset draws its
    own degradations (synthetic lines)."""
    if augment is None or isinstance(dataset, SyntheticLines):
        return dataset
    return AugmentedLines(dataset, augment, seed, epoch, part)


class EpochLoader(ResumableDataLoader):
    """The training loader of :class:`AugmentedLines`: before each pass it sets ``epoch`` to its
    batch sampler's epoch (which Lightning sets, and a resumed loader restores, before iterating;
    a DistributedSampler's under DDP)."""

    def __init__(self, *args: Any, epoch: SharedEpoch, **kwargs: Any):
        self.epoch = epoch
        super().__init__(*args, **kwargs)

    def __iter__(self) -> Any:
        self.epoch.set(self.batch_sampler.epoch)
        return super().__iter__()

"""Print-, scan- and camera-like degradations of a rendered text line. ``strength`` scales every
chance and magnitude: 0 leaves the image untouched, 1 is the training default, 2 is heavy.

Plain Pillow and numpy, about 1 ms a line: the training loop renders in the main process, and the
scan-simulation libraries measured slower per line (see the README's data section)."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageFilter

MIN_LOW_RES_HEIGHT = 12  # resolution loss keeps at least this many pixel rows
MIN_FADED_CONTRAST = 45  # fading keeps the ink at least this many gray levels below the paper


def _chance(rng: np.random.Generator, p: float) -> bool:
    return rng.random() < min(p, 1.0)


def affine(image: Image.Image, angle_deg: float, shear: float, x_scale: float,
           fill: int) -> Image.Image:
    """Stretch x by ``x_scale``, shear x by ``shear`` * y, then rotate by ``angle_deg``; the
    canvas grows to keep all of it and ``fill`` covers the new corners."""
    theta = math.radians(angle_deg)
    rotate = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    forward = rotate @ np.array([[x_scale, shear], [0.0, 1.0]])
    width, height = image.size
    corners = forward @ np.array([[0, width, 0, width], [0, 0, height, height]], dtype=float)
    low, high = corners.min(axis=1), corners.max(axis=1)
    inverse = np.linalg.inv(forward)
    offset = inverse @ low
    data = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    size = (max(1, math.ceil(high[0] - low[0])), max(1, math.ceil(high[1] - low[1])))
    return image.transform(size, Image.Transform.AFFINE, data, Image.Resampling.BILINEAR,
                           fillcolor=fill)


def curve(image: Image.Image, amplitude: float, phase: float, periods: float,
          fill: int) -> Image.Image:
    """Shift each column down by ``amplitude`` * sin(2 pi (``periods`` * x / width + ``phase``))
    pixels (rounded), as a curved page bends a line; ``fill`` covers what comes in."""
    pixels = np.asarray(image)
    height, width = pixels.shape
    shifts = np.rint(amplitude * np.sin(2 * np.pi * (periods * np.arange(width) / width + phase)))
    rows = np.arange(height)[:, None] - shifts[None, :].astype(np.int64)
    inside = (rows >= 0) & (rows < height)
    curved = np.take_along_axis(pixels, np.clip(rows, 0, height - 1), axis=0)
    return Image.fromarray(np.where(inside, curved, np.uint8(fill)))


def _ink(image: Image.Image, rng: np.random.Generator, strength: float, background: int,
         ink: int) -> Image.Image:
    """Ink spread (bolder strokes) or starved ink (thinner strokes) on a line drawn large enough
    to keep its strokes, then uneven ink: darkness scaled by a smooth field, as faded print, never
    below ``MIN_FADED_CONTRAST`` gray levels."""
    if image.height >= 24 and _chance(rng, 0.25 * strength):
        bolder = rng.random() < 0.5
        image = image.filter(ImageFilter.MinFilter(3) if bolder else ImageFilter.MaxFilter(3))
    if _chance(rng, 0.2 * strength):
        pixels = np.asarray(image, dtype=np.float32)
        fade = 1.0 - np.abs(_stains(rng, pixels.shape, float(rng.uniform(0.2, 0.5)) * strength))
        lowest = min(1.0, max(0.3, MIN_FADED_CONTRAST / max(background - ink, 1)))
        pixels = background - (background - pixels) * np.clip(fade, lowest, 1.0)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return image


def _binarize(image: Image.Image, background: int, ink: int) -> Image.Image:
    """Black ink on white paper at the middle gray level, as a bilevel scanner writes it."""
    threshold = (background + ink) / 2
    return image.point(lambda value: 0 if value < threshold else 255)


def _stains(rng: np.random.Generator, shape: tuple[int, int], amplitude: float) -> np.ndarray:
    """(H, W) smooth zero-mean blotches, like uneven paper, of about ``amplitude`` gray levels."""
    height, width = shape
    coarse = rng.standard_normal((3, max(2, width // (2 * height) + 2)), dtype=np.float32)
    smooth = Image.fromarray(coarse * amplitude).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(smooth)


def _pixel_noise(image: Image.Image, rng: np.random.Generator, strength: float,
                 contrast: int) -> Image.Image:
    """Paper stains, uneven lighting (a linear ramp) and gaussian noise (sigma at most
    ``contrast`` / 5), each with a chance ~ ``strength``."""
    stains = _chance(rng, 0.2 * strength)
    ramp, noise = _chance(rng, 0.15 * strength), _chance(rng, 0.5 * strength)
    if not (stains or ramp or noise):
        return image
    pixels = np.asarray(image, dtype=np.float32)
    if stains:
        pixels = pixels + _stains(rng, pixels.shape, float(rng.uniform(0.3, 1.0)) * 10 * strength)
    if ramp:
        axis = int(rng.integers(2))
        shade = np.linspace(1.0, float(rng.uniform(1 - 0.2 * strength, 1.0)), pixels.shape[axis],
                            dtype=np.float32)
        pixels = pixels * (shade[:, None] if axis == 0 else shade[None, :])
    if noise:
        sigma = min(float(rng.uniform(0.2, 1.0)) * 6 * strength, contrast / 5)
        pixels = pixels + sigma * rng.standard_normal(pixels.shape, dtype=np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("L")


def degrade(image: Image.Image, rng: np.random.Generator, strength: float, background: int,
            ink: int) -> Image.Image:
    """Ink spread or starvation, fading, curvature, slight rotation, shear and stretch, resolution
    loss, blur, then either bilevel thresholding or stains, lighting, noise and JPEG artefacts;
    ``background`` fills uncovered corners, ``ink`` bounds the noise."""
    if strength <= 0:
        return image
    image = _ink(image, rng, strength, background, ink)
    if _chance(rng, 0.2 * strength):
        amplitude = float(rng.uniform(0.5, 1.0 + 0.05 * strength * image.height))
        image = curve(image, amplitude, float(rng.random()), float(rng.uniform(0.3, 1.0)),
                      background)
    if _chance(rng, 0.7 * strength):
        angle = float(rng.uniform(-2.0, 2.0)) * strength
        shear = float(rng.uniform(-0.15, 0.15)) * strength if _chance(rng, 0.4) else 0.0
        x_scale = math.exp(float(rng.uniform(-0.1, 0.1)) * strength)
        image = affine(image, angle, shear, x_scale, background)
    if _chance(rng, 0.35 * strength):
        lowest = max(0.3, 1 - 0.3 * strength, MIN_LOW_RES_HEIGHT / image.height)
        factor = float(rng.uniform(min(lowest, 0.9), 0.9))
        small = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        image = image.resize(small, Image.Resampling.BILINEAR).resize(image.size,
                                                                       Image.Resampling.BILINEAR)
    if _chance(rng, 0.35 * strength):
        radius = float(rng.uniform(0.3, 0.5 + 0.4 * strength))
        image = image.filter(ImageFilter.GaussianBlur(radius))
    if _chance(rng, 0.12 * strength):
        return _binarize(image, background, ink)
    image = _pixel_noise(image, rng, strength, background - ink)
    if _chance(rng, 0.3 * strength):
        image = _jpeg(image, int(rng.integers(max(5, round(60 - 25 * strength)), 96)))
    return image

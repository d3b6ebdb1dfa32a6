"""Scan- and camera-like degradations of a rendered text line. ``strength`` scales every chance
and magnitude: 0 leaves the image untouched, 1 is the training default, 2 is heavy."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageFilter

MIN_LOW_RES_HEIGHT = 14  # resolution loss keeps at least this many pixel rows


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
    """Slight rotation, shear and stretch, resolution loss, blur, stains, lighting, noise
    and JPEG artefacts; ``background`` fills uncovered corners, ``ink`` bounds the noise."""
    if strength <= 0:
        return image
    if _chance(rng, 0.7 * strength):
        angle = float(rng.uniform(-2.0, 2.0)) * strength
        shear = float(rng.uniform(-0.15, 0.15)) * strength if _chance(rng, 0.4) else 0.0
        x_scale = math.exp(float(rng.uniform(-0.1, 0.1)) * strength)
        image = affine(image, angle, shear, x_scale, background)
    if _chance(rng, 0.2 * strength):
        lowest = max(0.3, 1 - 0.3 * strength, MIN_LOW_RES_HEIGHT / image.height)
        factor = float(rng.uniform(min(lowest, 0.9), 0.9))
        small = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        image = image.resize(small, Image.Resampling.BILINEAR).resize(image.size,
                                                                       Image.Resampling.BILINEAR)
    if _chance(rng, 0.35 * strength):
        radius = float(rng.uniform(0.3, 0.5 + 0.4 * strength))
        image = image.filter(ImageFilter.GaussianBlur(radius))
    image = _pixel_noise(image, rng, strength, background - ink)
    if _chance(rng, 0.3 * strength):
        image = _jpeg(image, int(rng.integers(max(5, round(60 - 25 * strength)), 96)))
    return image

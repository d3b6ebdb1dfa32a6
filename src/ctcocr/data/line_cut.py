"""Cutting one text line out of a page image by its polygon (PAGE and ALTO lines alike).

The crop is the polygon's bounding box grown by ``margin`` pixels on every side (clipped to the
page). Pixels outside the polygon widened by ``margin`` are filled with the paper's gray level (the
median of the pixels inside), so neighbouring lines that reach into a slanted or curved line's box
do not show. When the line has a baseline whose angle is at least ``deskew_min_degrees``, the
masked crop is rotated by that angle to make the baseline horizontal and trimmed to the rotated
mask; smaller angles are left alone (rotating blurs, and a few degrees of skew is what a
segmenter's straight crops carry anyway).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw


def baseline_angle(baseline: np.ndarray) -> float:
    """Angle in degrees of the chord from the first to the last point of a (N, 2) baseline, in
    image coordinates (y down: a baseline falling to the right has a positive angle).

    A mostly horizontal baseline drawn right to left counts as left to right, so the angle lies
    in [-45, 45] for such lines; a steep one (a vertical line of a rotated page) keeps its
    direction, giving about +90 (written downwards) or -90 (upwards).
    """
    dx, dy = (baseline[-1] - baseline[0]).tolist()
    if abs(dx) >= abs(dy) and dx < 0:
        dx, dy = -dx, -dy
    return math.degrees(math.atan2(dy, dx))


@dataclass(frozen=True)
class LineCutter:
    """Page image (mode "L") + line polygon (and baseline) -> line image (mode "L").

    Args:
        margin: pixels added around the polygon, in page pixels (>= 0).
        deskew_min_degrees: rotate lines whose baseline is at least this steep (degrees); ``None``
            never rotates.
    """

    margin: int = 4
    deskew_min_degrees: float | None = 3.0

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")

    def __call__(
        self, page: Image.Image, polygon: np.ndarray, baseline: np.ndarray | None = None
    ) -> Image.Image:
        """``polygon``: (N, 2) x, y page pixels; ``baseline``: (M, 2) or None. Raises ValueError
        when the polygon lies outside the page."""
        left, top = np.floor(polygon.min(axis=0) - self.margin).astype(int).tolist()
        right, bottom = np.ceil(polygon.max(axis=0) + self.margin + 1).astype(int).tolist()
        left, top = max(left, 0), max(top, 0)
        right, bottom = min(right, page.width), min(bottom, page.height)
        if right <= left or bottom <= top:
            raise ValueError(f"the line lies outside the page image ({page.width}x{page.height})")
        crop = page.crop((left, top, right, bottom))
        mask = self._mask(crop.size, polygon - (left, top))
        inside = np.asarray(crop)[np.asarray(mask) > 0]
        paper = int(np.median(inside)) if inside.size else 255
        line = Image.composite(crop, Image.new("L", crop.size, paper), mask)
        if baseline is None or len(baseline) < 2 or self.deskew_min_degrees is None:
            return line
        angle = baseline_angle(baseline)
        if abs(angle) < self.deskew_min_degrees:
            return line
        line = line.rotate(angle, Image.Resampling.BILINEAR, expand=True, fillcolor=paper)
        box = mask.rotate(angle, Image.Resampling.NEAREST, expand=True, fillcolor=0).getbbox()
        return line.crop(box) if box else line

    def _mask(self, size: tuple[int, int], polygon: np.ndarray) -> Image.Image:
        """255 inside the polygon widened by the margin, 0 outside."""
        mask = Image.new("L", size, 0)
        draw = ImageDraw.Draw(mask)
        points = [tuple(point) for point in polygon.tolist()]
        if len(points) >= 3:
            draw.polygon(points, fill=255)
        if self.margin or len(points) < 3:
            draw.line(points + points[:1], fill=255, width=2 * self.margin + 1, joint="curve")
        return mask

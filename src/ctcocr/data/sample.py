"""The record every dataset of :mod:`ctcocr.data` yields."""

from __future__ import annotations

from typing import NamedTuple

from PIL import Image


class Sample(NamedTuple):
    """One text-line image and its label.

    image: mode "L", dark text on a light background, any size.
    text: the label, never empty.
    source: where the sample came from, for error messages (e.g. "synthetic[seed=1, index=42]").
    """

    image: Image.Image
    text: str
    source: str

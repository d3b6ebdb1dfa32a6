"""Shared helpers for the data tests: tiny folder datasets written with Pillow."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

WriteFolder = Callable[..., list[np.ndarray]]


def write_folder(
    root: Path, labels: Sequence[str], widths: Sequence[int] | None = None, height: int = 20
) -> list[np.ndarray]:
    """Write ``img/NNN.png`` noise images and ``gt.txt``; returns the pixel arrays (H, W) uint8."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True, exist_ok=True)
    arrays, lines = [], []
    for number, label in enumerate(labels):
        width = widths[number] if widths is not None else 10 + 7 * number
        array = rng.integers(0, 256, size=(height, width), dtype=np.uint8)
        Image.fromarray(array).save(root / "img" / f"{number:03d}.png")
        arrays.append(array)
        lines.append(f"img/{number:03d}.png\t{label}\n")
    (root / "gt.txt").write_text("".join(lines), encoding="utf-8")
    return arrays


@pytest.fixture
def folder_dataset(tmp_path: Path) -> WriteFolder:
    """``folder_dataset(labels, name="ds", widths=None)`` -> (root, pixel arrays)."""

    def make(labels: Sequence[str], name: str = "ds", widths: Sequence[int] | None = None):
        root = tmp_path / name
        return root, write_folder(root, labels, widths)

    return make

"""Batching of prepared lines: right-pad to the widest image, pad targets, drop skipped samples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, TypedDict

import torch
from torch import Tensor

from ctcocr.data.transforms import background, round_up


class EncodedLine(NamedTuple):
    """One sample ready for batching."""

    image: Tensor  # (1, H, W) float32 in [-1, 1]
    target: Tensor  # (L,) int64 class ids in 1..N
    text: str  # the normalized label
    source: str
    squeezed: bool  # the image was wider than max_width and was squeezed


class LineBatch(TypedDict):
    """What every loader of :class:`~ctcocr.data.datamodule.LineDataModule` yields."""

    images: Tensor  # (B, 1, H, W_pad) float32, W_pad a multiple of width_multiple
    widths: Tensor  # (B,) int64 image widths after resize (and min_width), before batch padding
    targets: Tensor  # (B, L_max) int64, padded with 0 (the blank)
    target_lengths: Tensor  # (B,) int64
    texts: list[str]
    sources: list[str]
    num_skipped: int  # samples dropped from this batch (unreadable images under "skip")
    num_squeezed: int  # images squeezed to max_width in this batch


class LineCollate:
    """Collate function: a list of :class:`EncodedLine` or None (skipped) -> :class:`LineBatch`.

    Each image is right-padded with its own background (median border value) to the batch width,
    rounded up to a multiple of ``width_multiple`` so that few distinct widths reach the model.
    Images must be ``height`` pixels high; a batch of only skipped samples has B = 0.
    """

    def __init__(self, height: int, width_multiple: int = 16):
        if width_multiple < 1:
            raise ValueError(f"width_multiple must be >= 1, got {width_multiple}")
        self.height = height
        self.width_multiple = width_multiple

    def __call__(self, items: Sequence[EncodedLine | None]) -> LineBatch:
        lines = [item for item in items if item is not None]
        widths = [line.image.size(-1) for line in lines]
        target_lengths = [line.target.numel() for line in lines]
        batch_width = round_up(max(widths, default=0), self.width_multiple)
        images = torch.zeros(len(lines), 1, self.height, batch_width)
        targets = torch.zeros(len(lines), max(target_lengths, default=0), dtype=torch.long)
        for row, (line, width) in enumerate(zip(lines, widths)):
            images[row, :, :, :width] = line.image
            images[row, :, :, width:] = background(line.image)
            targets[row, : line.target.numel()] = line.target
        return LineBatch(
            images=images,
            widths=torch.tensor(widths, dtype=torch.long),
            targets=targets,
            target_lengths=torch.tensor(target_lengths, dtype=torch.long),
            texts=[line.text for line in lines],
            sources=[line.source for line in lines],
            num_skipped=len(items) - len(lines),
            num_squeezed=sum(line.squeezed for line in lines),
        )

"""Convolutional feature extractors that keep the image width as the sequence axis.

Each backbone maps images (B, 1, H, W) to feature maps (B, C, H', W') and says how many
columns W' a given input width yields, so the loss and the decoder see each sample's true
number of frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def _conv_block(in_ch: int, out_ch: int, stride: int = 1, batch_norm: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_ch))
    layers.append(nn.ReLU(inplace=True))
    return layers


class Backbone(nn.Module):
    """A CNN whose width reduction is a list of (kernel, stride, padding) steps along the width."""

    height: int
    out_channels: int
    out_height: int
    width_steps: Sequence[tuple[int, int, int]]

    def output_lengths(self, widths: Tensor) -> Tensor:
        """Input widths in pixels (B,) -> number of output columns (B,), int64."""
        lengths = widths.long()
        for kernel, stride, padding in self.width_steps:
            lengths = torch.div(lengths + 2 * padding - kernel, stride, rounding_mode="floor") + 1
        return lengths.clamp_min(1)


class SmallBackbone(Backbone):
    """A fast CPU backbone: stride-2 stem, five 3x3 conv layers with batch norm, width / 4.

    ``height_reduction`` 32 (default): each of the three deepest layers works at half the height
    of the one before, so the wide layers are cheap; 16: the fourth layer keeps the third's height
    (about 1.8x the multiply-adds, twice the features per column).
    Input (B, 1, H, W) -> (B, channels[-1], H / height_reduction, W / 4).
    """

    def __init__(self, height: int = 32, channels: Sequence[int] = (32, 64, 128, 128, 256),
                 height_reduction: int = 32) -> None:
        super().__init__()
        if height_reduction not in (16, 32):
            raise ValueError(f"height_reduction must be 16 or 32, got {height_reduction}")
        if height % height_reduction:
            raise ValueError(f"SmallBackbone needs a height divisible by {height_reduction}, "
                             f"got {height}")
        self.height = height
        c1, c2, c3, c4, c5 = channels
        layers = [
            *_conv_block(1, c1, stride=2),  # H/2, W/2
            *_conv_block(c1, c2),
            nn.MaxPool2d(2, 2),  # H/4, W/4
            *_conv_block(c2, c3),
        ]
        if height_reduction == 32:
            layers.append(nn.MaxPool2d((2, 1), (2, 1)))  # H/8
        layers += [
            *_conv_block(c3, c4),
            nn.MaxPool2d((2, 1), (2, 1)),
            *_conv_block(c4, c5),
            nn.MaxPool2d((2, 1), (2, 1)),  # H / height_reduction
        ]
        self.features = nn.Sequential(*layers)
        self.out_channels = c5
        self.out_height = height // height_reduction
        self.width_steps = [(3, 2, 1), (2, 2, 0)]

    def forward(self, images: Tensor) -> Tensor:
        """(B, 1, H, W) -> (B, C, H / height_reduction, W / 4)."""
        return self.features(images)


class VGGBackbone(Backbone):
    """The CRNN paper's VGG-style backbone (Shi et al. 2015): 7 conv layers 64-128-256-256-512-512-512.

    Batch norm on the 5th, 6th and 7th layers, 2x1 pools near the top keep the width.
    Input (B, 1, 32, W) -> (B, 512, 1, W / 4 - 1); a 32x100 image gives 24 frames.
    """

    def __init__(self, height: int = 32) -> None:
        super().__init__()
        if height != 32:
            raise ValueError(f"VGGBackbone is defined for height 32, got {height}")
        self.height = height
        self.features = nn.Sequential(
            *_conv_block(1, 64, batch_norm=False),
            nn.MaxPool2d(2, 2),  # 16 x W/2
            *_conv_block(64, 128, batch_norm=False),
            nn.MaxPool2d(2, 2),  # 8 x W/4
            *_conv_block(128, 256, batch_norm=False),
            *_conv_block(256, 256, batch_norm=False),
            nn.MaxPool2d((2, 2), (2, 1), (0, 1)),  # 4 x W/4 + 1
            *_conv_block(256, 512),
            *_conv_block(512, 512),
            nn.MaxPool2d((2, 2), (2, 1), (0, 1)),  # 2 x W/4 + 2
            nn.Conv2d(512, 512, 2, 1, 0, bias=False),  # 1 x W/4 + 1
            nn.BatchNorm2d(512),
            nn.ReLU(inplace=True),
        )
        self.out_channels = 512
        self.out_height = 1
        self.width_steps = [(2, 2, 0), (2, 2, 0), (2, 1, 1), (2, 1, 1), (2, 1, 0)]

    def forward(self, images: Tensor) -> Tensor:
        """(B, 1, 32, W) -> (B, 512, 1, W')."""
        return self.features(images)

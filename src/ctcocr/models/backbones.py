"""Convolutional feature extractors that keep the image width as the sequence axis.

Each backbone maps images (B, 1, H, W) to feature maps (B, C, H', W') and says how many
columns W' a given input width yields, so the loss and the decoder see each sample's true
number of frames. Given the true widths of right-padded images, a backbone zeroes each layer's
input beyond the valid width, so every sample's valid columns are what it would get alone.
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


def _along_width(value: int | tuple[int, ...]) -> int:
    """A layer's kernel_size / stride / padding / dilation attribute -> its width component."""
    return value[-1] if isinstance(value, tuple) else value


def _pads_right(layer: nn.Module) -> bool:
    """Whether a layer's last output column can read past the last input column (right padding
    or ceil_mode). Only such layers see a right-padded batch's padding, so only they are masked."""
    return _along_width(layer.padding) > 0 or getattr(layer, "ceil_mode", False)


def _layer_lengths(layer: nn.Conv2d | nn.MaxPool2d, lengths: Tensor) -> Tensor:
    """Valid input widths (B,) int64 -> valid output widths (B,) of a Conv2d or MaxPool2d, by
    PyTorch's output-size formula along the width (may be <= 0 for inputs too narrow)."""
    kernel, stride = _along_width(layer.kernel_size), _along_width(layer.stride)
    padding, dilation = _along_width(layer.padding), _along_width(layer.dilation)
    span = lengths + 2 * padding - dilation * (kernel - 1) - 1
    if not getattr(layer, "ceil_mode", False):
        return torch.div(span, stride, rounding_mode="floor") + 1
    out = -torch.div(-span, stride, rounding_mode="floor") + 1
    return out - ((out - 1) * stride >= lengths + padding).long()  # last window must start inside


class Backbone(nn.Module):
    """A CNN ``features`` (a Sequential) whose width reduction is that of its Conv2d and MaxPool2d
    layers.

    Right padding is invisible to the valid columns: each column-mixing layer that pads on the
    right gets its input zeroed beyond the valid width, which is what a lone image's conv sees
    (zero padding). A lone image's max-pool pads with -inf instead; zero gives the same maximum
    because such pools here follow a ReLU (inputs >= 0) and every window holds a valid column.
    """

    height: int
    out_channels: int
    out_height: int
    features: nn.Sequential

    def output_lengths(self, widths: Tensor) -> Tensor:
        """Input widths in pixels (B,) -> number of output columns (B,), int64, at least 1."""
        lengths = widths.long()
        for layer in self.features:
            if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
                lengths = _layer_lengths(layer, lengths)
        return lengths.clamp_min(1)

    def forward(self, images: Tensor, widths: Tensor | None = None) -> Tensor:
        """Images (B, 1, H, W), true widths (B,) int64 (None: all W) -> features (B, C, H', W')."""
        features, lengths = images, None if widths is None else widths.long()
        for layer in self.features:
            if lengths is not None and isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
                if _pads_right(layer):
                    columns = torch.arange(features.size(-1), device=features.device)
                    valid = columns < lengths[:, None]  # (B, W)
                    features = features * valid[:, None, None, :].to(features.dtype)
                lengths = _layer_lengths(layer, lengths)
            features = layer(features)
        return features


class SmallBackbone(Backbone):
    """A fast CPU backbone: stride-2 stem, five 3x3 conv layers with batch norm, width / 4.

    ``height_reduction`` 32 (default): each of the three deepest layers works at half the height
    of the one before, so the wide layers are cheap; 16: the fourth layer keeps the third's height
    (about 1.8x the multiply-adds, twice the features per column).
    Input (B, 1, H, W) -> (B, channels[-1], H / height_reduction, W / 4).
    """

    def __init__(self, height: int = 32, channels: Sequence[int] = (16, 32, 64, 96, 128),
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

"""CRNN: CNN columns -> stacked BiLSTM -> linear head -> per-frame log-probabilities (T, B, C)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ctcocr.models.backbones import Backbone


class BidirectionalLSTM(nn.Module):
    """One BiLSTM layer followed by a linear projection of its two directions: (T, B, I) -> (T, B, O)."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, bidirectional=True)
        self.projection = nn.Linear(2 * hidden_size, output_size)

    def forward(self, sequence: Tensor) -> Tensor:
        hidden, _ = self.rnn(sequence)
        return self.projection(hidden)


class CRNN(nn.Module):
    """Convolutional recurrent recognizer (Shi et al. 2015).

    The backbone's feature maps are flattened over height, so each image column becomes one
    feature vector; stacked bidirectional LSTMs (each projected back to ``hidden_size``, as in
    the paper) read the column sequence and the last projection scores the classes (blank = 0).
    """

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        sizes = [backbone.out_channels * backbone.out_height] + [hidden_size] * (num_layers - 1)
        outputs = [hidden_size] * (num_layers - 1) + [num_classes]
        layers: list[nn.Module] = []
        for index, (size_in, size_out) in enumerate(zip(sizes, outputs)):
            if index and dropout:
                layers.append(nn.Dropout(dropout))
            layers.append(BidirectionalLSTM(size_in, hidden_size, size_out))
        self.sequence = nn.Sequential(*layers)
        self.num_classes = num_classes

    def output_lengths(self, widths: Tensor) -> Tensor:
        """Image widths in pixels (B,) -> frames per sample (B,)."""
        return self.backbone.output_lengths(widths)

    def forward(self, images: Tensor) -> Tensor:
        """Images (B, 1, H, W) -> float32 log-probabilities (T, B, C), T = frames of width W."""
        features = self.backbone(images)
        batch, channels, height, width = features.shape
        columns = features.permute(3, 0, 1, 2).reshape(width, batch, channels * height)
        return torch.log_softmax(self.sequence(columns).float(), dim=-1)

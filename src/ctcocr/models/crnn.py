"""CRNN: CNN columns -> stacked BiLSTM -> linear head -> per-frame log-probabilities (T, B, C)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ctcocr.models.backbones import Backbone


def reverse_within_lengths(sequence: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sample's first ``lengths[b]`` steps and keep the rest: (T, B, F) -> (T, B, F).

    ``lengths`` (B,) int64, capped at T (None: all T). Its own inverse.
    """
    if lengths is None:
        return sequence.flip(0)
    steps = torch.arange(sequence.size(0), device=sequence.device)[:, None]  # (T, 1)
    lengths = torch.minimum(lengths, torch.full_like(lengths, sequence.size(0)))
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (T, B)
    return sequence.gather(0, index[:, :, None].expand_as(sequence))


class BidirectionalLSTM(nn.Module):
    """One BiLSTM layer and a linear projection of its two directions: (T, B, I) -> (T, B, O).

    The directions are two LSTMs; the backward one reads each sample reversed within its own
    length, so right padding never reaches a sample's valid steps. ``dropout`` applies to the
    directions' outputs before the projection (in training).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.forward_rnn = nn.LSTM(input_size, hidden_size)
        self.backward_rnn = nn.LSTM(input_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(2 * hidden_size, output_size)

    def forward(self, sequence: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Sequence (T, B, I) and valid steps per sample (B,) int64 (None: all T) -> (T, B, O)."""
        forward, _ = self.forward_rnn(sequence)
        backward, _ = self.backward_rnn(reverse_within_lengths(sequence, lengths))
        both = torch.cat([forward, reverse_within_lengths(backward, lengths)], -1)
        return self.projection(self.dropout(both))


class CRNN(nn.Module):
    """Convolutional recurrent recognizer (Shi et al. 2015).

    The backbone's feature maps are flattened over height, so each image column becomes one
    feature vector; stacked bidirectional LSTMs (each projected back to ``hidden_size``, as in
    the paper) read the column sequence and the last projection scores the classes (blank = 0).
    With ``shortcut``, a linear map of the column features is added to the class scores: the
    convolutional features get a direct path to the loss, and CTC leaves its all-blank plateau
    in fewer steps. ``dropout`` applies (in training) to the input of every BiLSTM layer after
    the first and to the features the class scores are computed from (the last layer's BiLSTM
    outputs and the shortcut's column features).
    """

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.0,
        shortcut: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        sizes = [backbone.out_channels * backbone.out_height] + [hidden_size] * (num_layers - 1)
        outputs = [hidden_size] * (num_layers - 1) + [num_classes]
        layers: list[nn.Module] = []
        for index, (size_in, size_out) in enumerate(zip(sizes, outputs)):
            if index and dropout:
                layers.append(nn.Dropout(dropout))
            last = index == num_layers - 1
            layers.append(BidirectionalLSTM(size_in, hidden_size, size_out,
                                            dropout if last else 0.0))
        self.sequence = nn.Sequential(*layers)
        self.shortcut = nn.Linear(sizes[0], num_classes) if shortcut else None
        self.shortcut_dropout = nn.Dropout(dropout)
        self.num_classes = num_classes

    def class_layers(self) -> list[nn.Linear]:
        """The linear layers whose output rows are the classes (row 0: blank)."""
        layers = [self.sequence[-1].projection]
        return layers if self.shortcut is None else [*layers, self.shortcut]

    def output_lengths(self, widths: Tensor) -> Tensor:
        """Image widths in pixels (B,) -> frames per sample (B,)."""
        return self.backbone.output_lengths(widths)

    def forward(self, images: Tensor, widths: Tensor | None = None) -> Tensor:
        """Images (B, 1, H, W) and their true widths (B,) int64 (None: all W) -> float32
        log-probabilities (T, B, C), T = frames of width W. A sample's first
        ``output_lengths(widths)[b]`` frames depend neither on the padding nor on the rest of the
        batch."""
        features = self.backbone(images, widths)
        batch, channels, height, width = features.shape
        columns = features.permute(3, 0, 1, 2).reshape(width, batch, channels * height)
        lengths = None if widths is None else self.output_lengths(widths)
        scores = columns
        for layer in self.sequence:
            is_rnn = isinstance(layer, BidirectionalLSTM)
            scores = layer(scores, lengths) if is_rnn else layer(scores)
        if self.shortcut is not None:
            scores = scores + self.shortcut(self.shortcut_dropout(columns))
        return torch.log_softmax(scores.float(), dim=-1)

"""Alignment pictures: the character spans drawn on the line, the heat map rows and the path."""

from __future__ import annotations

import torch
from matplotlib.patches import Rectangle

from ctcocr.data.charset import Charset
from ctcocr.metrics.alignment_plots import alignment_figure, figure_to_tensor, prediction_grid

CHARSET = Charset("ab")  # blank 0, a 1, b 2


def peaked(labels: list[int], classes: int = 3, peak: float = 0.9) -> torch.Tensor:
    """Log-probabilities (T, C) with ``peak`` on the given label of each frame."""
    probs = torch.full((len(labels), classes), (1 - peak) / (classes - 1))
    probs[torch.arange(len(labels)), torch.tensor(labels)] = peak
    return probs.log()


def draw(frames: list[list[int]], lengths: list[int], targets: list[list[int]]):
    log_probs = torch.stack([peaked(f) for f in frames], dim=1)  # (T, N, C)
    padded = torch.zeros(len(targets), max(map(len, targets)), dtype=torch.long)
    for n, target in enumerate(targets):
        padded[n, : len(target)] = torch.tensor(target)
    images = torch.zeros(len(frames), 1, 32, 4 * len(frames[0]))
    widths = torch.full((len(frames),), 4 * len(frames[0]))
    return alignment_figure(images, widths, log_probs, torch.tensor(lengths), padded,
                            torch.tensor([len(t) for t in targets]), CHARSET)


def spans_drawn(axes) -> list[tuple[float, float]]:
    return sorted((patch.get_x(), patch.get_x() + patch.get_width())
                  for patch in axes.patches if isinstance(patch, Rectangle))


def test_character_spans_and_heat_map_rows_follow_the_viterbi_path():
    # frames "a a blank b b", label "ab": a spans frames 0-1, b spans frames 3-4
    figure = draw([[1, 1, 0, 2, 2]], [5], [[1, 2]])
    image_axes, heat_axes = figure.axes
    assert spans_drawn(image_axes) == [(0, 2), (3, 5)]
    assert [tick.get_text() for tick in heat_axes.get_yticklabels()] == ["blank", "a", "b", "other"]
    _path_x, path_y = heat_axes.lines[0].get_data()
    assert list(path_y) == [1.5, 1.5, 0.5, 2.5, 2.5]  # rows of a, a, blank, b, b
    assert heat_axes.images[0].get_array().shape == (4, 5)


def test_an_unreachable_label_falls_back_to_the_greedy_prediction_and_padding_is_ignored():
    # sample 1 has 3 valid frames of 5: its label "aaa" needs 5, so its greedy "b" is aligned
    figure = draw([[1, 0, 2, 0, 0], [2, 2, 0, 1, 1]], [5, 3], [[1, 2], [1, 1, 1]])
    assert len(figure.axes) == 4
    second_image, second_heat = figure.axes[2], figure.axes[3]
    assert "cannot be emitted" in second_image.get_title(loc="left")
    assert spans_drawn(second_image) == [(0, 2)]
    assert second_heat.images[0].get_array().shape[1] == 3


def test_figure_and_grid_tensors_are_rgb_in_unit_range():
    tensor = figure_to_tensor(draw([[1, 0, 2]], [3], [[1, 2]]))
    assert tensor.dim() == 3 and tensor.size(0) == 3 and tensor.size(1) > 50
    assert 0.0 <= float(tensor.min()) and float(tensor.max()) <= 1.0
    grid = prediction_grid(torch.zeros(2, 1, 32, 40), torch.tensor([40, 20]), ["ab", "b"], ["ab", "a"])
    assert grid.size(0) == 3 and 0.0 <= float(grid.min()) <= float(grid.max()) <= 1.0

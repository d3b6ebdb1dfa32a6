"""Pictures of what the recognizer reads and how it aligns, for TensorBoard and reports."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from ctcocr.ctc.align import viterbi_align
from ctcocr.ctc.decode import greedy_decode, pad_tokens
from ctcocr.data.charset import Charset

_GREEN, _RED, _GRAY = (0, 140, 0), (200, 0, 0), (90, 90, 90)


def to_pil(image: Tensor, width: int | None = None) -> Image.Image:
    """A normalised image (1, H, W) in [-1, 1] -> grayscale PIL image cropped to ``width`` columns."""
    pixels = ((image[0, :, :width].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(pixels.numpy(), mode="L")


def prediction_grid(
    images: Tensor, widths: Tensor, predictions: Sequence[str], labels: Sequence[str]
) -> Tensor:
    """Images (N, 1, H, W) with their predictions (green if exact, red if not) and labels.

    Returns an RGB tensor (3, H_grid, W_grid) in [0, 1], one row per sample.
    """
    font = ImageFont.load_default(size=14)
    rows = []
    for image, width, prediction, label in zip(images, widths.tolist(), predictions, labels):
        line = to_pil(image, int(width)).convert("RGB")
        caption_width = int(max(font.getlength(prediction), font.getlength(label))) + 80
        row = Image.new("RGB", (max(line.width, caption_width) + 8, line.height + 40), "white")
        row.paste(line, (4, 2))
        draw = ImageDraw.Draw(row)
        draw.text((4, line.height + 4), f"pred: {prediction}", font=font,
                  fill=_GREEN if prediction == label else _RED)
        draw.text((4, line.height + 21), f"gt:   {label}", font=font, fill=_GRAY)
        rows.append(row)
    grid = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    top = 0
    for row in rows:
        grid.paste(row, (0, top))
        top += row.height
    return torch.from_numpy(np.asarray(grid).copy()).permute(2, 0, 1).float() / 255.0


def figure_to_tensor(figure: Figure) -> Tensor:
    """A Matplotlib figure rendered on an Agg canvas -> RGB tensor (3, H, W) in [0, 1]."""
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1).float() / 255.0


def _class_name(charset: Charset, index: int) -> str:
    if index == charset.blank:
        return "blank"
    character = charset.decode([index])
    return "space" if character == " " else character


def alignment_figure(
    images: Tensor, widths: Tensor, log_probs: Tensor, lengths: Tensor, targets: Tensor,
    target_lengths: Tensor, charset: Charset,
) -> Figure:
    """For each of N samples: the input line with each label character's Viterbi frame span drawn
    on it, and under it the per-frame posteriors as a heat map with the Viterbi path.

    images (N, 1, H, W) in [-1, 1], widths (N,), log_probs (T, N, C), lengths (N,), padded targets
    (N, L), target_lengths (N,). The heat map's rows are the blank, the classes of the label and of
    the greedy prediction, and "other" (the rest of the mass). A label the frames cannot emit is
    replaced by the greedy prediction (said in the title). Both panels share the frame axis.
    """
    log_probs = log_probs.detach().float().cpu()
    lengths, target_lengths = lengths.cpu(), target_lengths.cpu()
    greedy = greedy_decode(log_probs, lengths, charset.blank)
    alignment = viterbi_align(log_probs, targets.cpu(), lengths, target_lengths, charset.blank)
    forced, forced_lengths = pad_tokens(greedy.tokens)
    fallback = viterbi_align(log_probs, forced, lengths, forced_lengths, charset.blank)
    label_tokens = [targets[n, : int(target_lengths[n])].tolist() for n in range(len(lengths))]

    rows_per_sample = [2 + len(dict.fromkeys(tokens + greedy.tokens[n]))
                       for n, tokens in enumerate(label_tokens)]
    heat_heights = [0.14 * rows for rows in rows_per_sample]  # inches per heat map
    sample_heights = [1.0 + heat for heat in heat_heights]  # the line image is 1 inch high
    height = sum(sample_heights) * 1.35 + 0.6  # inches, with the gaps between samples
    figure = Figure(figsize=(10, height))  # fixed margins: constrained layout costs seconds here
    FigureCanvasAgg(figure)
    outer = figure.add_gridspec(len(lengths), 1, height_ratios=sample_heights, hspace=0.4,
                                left=0.07, right=0.99, top=1 - 0.3 / height, bottom=0.4 / height)
    axes = []
    for n, heat in enumerate(heat_heights):
        inner = outer[n].subgridspec(2, 1, height_ratios=(1.0, heat), hspace=0.04)
        axes.append((figure.add_subplot(inner[0]), figure.add_subplot(inner[1])))
    for n in range(len(lengths)):
        frames = int(lengths[n])
        feasible = bool(torch.isfinite(alignment.log_prob[n]))
        chosen = alignment if feasible else fallback
        tokens = label_tokens[n] if feasible else greedy.tokens[n]
        image_axes, heat_axes = axes[n]
        _draw_line_with_spans(image_axes, to_pil(images[n], int(widths[n])), frames,
                              chosen.token_spans[n, : len(tokens)], tokens, charset)
        label, prediction = charset.decode(label_tokens[n]), charset.decode(greedy.tokens[n])
        aligned = "label" if feasible else "greedy prediction (the label cannot be emitted)"
        image_axes.set_title(f"label {label!r}   greedy {prediction!r}   Viterbi path of the "
                             f"{aligned}: log P = {float(chosen.log_prob[n]):.2f}", fontsize=8,
                             loc="left")
        classes = [charset.blank, *dict.fromkeys(label_tokens[n] + greedy.tokens[n])]
        _draw_posteriors(heat_axes, log_probs[:frames, n].exp(), classes,
                         chosen.labels[:frames, n], charset)
    return figure


def _draw_line_with_spans(axes: Axes, line: Image.Image, frames: int, spans: Tensor,
                          tokens: Sequence[int], charset: Charset) -> None:
    """The line image stretched over ``frames`` frames, a box per character span (L, 2)."""
    axes.imshow(np.asarray(line), cmap="gray", vmin=0, vmax=255, aspect="auto",
                extent=(0, frames, line.height, 0))
    colours = ("tab:red", "tab:blue")
    for index, ((start, end), token) in enumerate(zip(spans.tolist(), tokens)):
        if start < 0:
            continue
        colour = colours[index % 2]
        axes.add_patch(Rectangle((start, 0), end + 1 - start, line.height, fill=False,
                                 edgecolor=colour, linewidth=1.2))
        axes.text((start + end + 1) / 2, 0, _class_name(charset, token), color=colour,
                  ha="center", va="bottom", fontsize=7)
    axes.set(xlim=(0, frames), yticks=[])
    axes.tick_params(labelbottom=False)


def _draw_posteriors(axes: Axes, probs: Tensor, classes: Sequence[int], path: Tensor,
                     charset: Charset) -> None:
    """Heat map of probs (T, C) restricted to ``classes`` plus "other"; the path (T,) on top."""
    shown = probs[:, list(classes)]
    heat = torch.cat([shown, (1 - shown.sum(1, keepdim=True)).clamp(min=0)], dim=1).T.numpy()
    frames = probs.size(0)
    axes.imshow(heat, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest",
                extent=(0, frames, heat.shape[0], 0))
    row_of = {label: row for row, label in enumerate(classes)}
    steps = [(t + 0.5, row_of[label] + 0.5) for t, label in enumerate(path.tolist())
             if label in row_of]
    if steps:
        axes.plot(*zip(*steps), color="white", linewidth=0.8, marker="o", markersize=2)
    axes.set_yticks(np.arange(heat.shape[0]) + 0.5,
                    [_class_name(charset, c) for c in classes] + ["other"], fontsize=6)
    axes.set_xlim(0, frames)
    axes.set_xlabel("frame", fontsize=7)
    axes.tick_params(axis="x", labelsize=6)

"""Reliability diagram of per-sample confidences, drawn without a display (Agg canvas)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ctcocr.metrics.calibration import ArrayLike, expected_calibration_error, reliability_bins


def reliability_diagram(
    conf: ArrayLike,
    correct: ArrayLike,
    n_bins: int = 15,
    title: str | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Accuracy per equal-width confidence bin against the diagonal, above a histogram of counts.

    conf, correct: (N,) as for :mod:`ctcocr.metrics.calibration`. The title carries the ECE. When
    ``path`` is given the figure is also saved there (format from the suffix, e.g. ``.png``).
    """
    bins = reliability_bins(conf, correct, n_bins)
    ece = expected_calibration_error(conf, correct, n_bins)
    lefts = bins.edges[:-1].numpy()
    width = 1.0 / n_bins
    filled = (bins.count > 0).numpy()

    figure = Figure(figsize=(5, 6), layout="constrained")
    FigureCanvasAgg(figure)
    accuracy_axes, count_axes = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    accuracy_axes.bar(
        lefts[filled], bins.accuracy.numpy()[filled], width=width, align="edge",
        edgecolor="black", label="accuracy",
    )
    accuracy_axes.bar(
        lefts[filled], (bins.confidence - bins.accuracy).numpy()[filled], width=width,
        bottom=bins.accuracy.numpy()[filled], align="edge", color="tab:red", alpha=0.3,
        edgecolor="tab:red", label="gap to mean confidence",
    )
    accuracy_axes.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    accuracy_axes.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy")
    accuracy_axes.legend(loc="upper left")
    accuracy_axes.set_title(f"{title} (ECE {ece:.2%})" if title else f"ECE {ece:.2%}")

    count_axes.bar(lefts, bins.count.numpy(), width=width, align="edge", edgecolor="black")
    count_axes.set(xlabel="confidence", ylabel="samples")

    if path is not None:
        figure.savefig(path)
    return figure

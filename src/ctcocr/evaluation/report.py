"""The report files of an evaluation: metrics.json, predictions.csv, by_group.csv, reliability
diagrams, alignment pictures and the worst lines; and the terminal summary."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ctcocr.data.charset import Charset
from ctcocr.evaluation.metrics import N_BINS, evaluate_outputs, group_metrics
from ctcocr.evaluation.outputs import ALIGNMENT_SAMPLES, BatchOutputs, collect_outputs
from ctcocr.metrics import char_error_rate, reliability_diagram

if TYPE_CHECKING:
    from ctcocr.recognition.decoding import TextDecoder
    from ctcocr.recognition.recognizer import LineReader

log = logging.getLogger(__name__)

ROW_FIELDS = ["source", "label", "prediction", "confidence", "path_confidence", "kept_confidence",
              "gt_nll"]
GROUP_FIELDS = ["group", "samples", "cer", "acc", "acc_ci", "ned"]
#: Lines drawn in ``worst_lines.png`` of a report by default.
WORST_LINES = 24


def write_report(
    output_dir: str | Path, metrics: dict[str, Any], rows: list[dict[str, Any]]
) -> Path:
    """Write ``metrics.json``, ``predictions.csv``, ``by_group.csv`` (:func:`write_groups`) and the
    reliability diagram(s) (``reliability.png``, and ``reliability_ts.png`` after temperature
    scaling) into ``output_dir``; returns the JSON path."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    fields = [name for name in [*ROW_FIELDS, "confidence_ts"] if rows and name in rows[0]]
    with open(output_dir / "predictions.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields or ROW_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    write_groups(output_dir / "by_group.csv", group_metrics(rows))
    if rows:
        correct = [float(row["prediction"] == row["label"]) for row in rows]
        reliability_diagram([row["confidence"] for row in rows], correct, N_BINS,
                            title="string confidence", path=output_dir / "reliability.png")
        if "confidence_ts" in rows[0]:
            title = f"after temperature scaling, T = {metrics['temperature']:.3g}"
            reliability_diagram([row["confidence_ts"] for row in rows], correct, N_BINS,
                                title=title, path=output_dir / "reliability_ts.png")
    return path


def write_groups(path: str | Path, groups: dict[str, dict[str, Any]]) -> Path:
    """``by_group.csv``: one row per group of :func:`~ctcocr.evaluation.metrics.group_metrics`
    (group, samples, cer, acc, acc_ci, ned); a single ``ungrouped`` row outside folder datasets."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=GROUP_FIELDS)
        writer.writeheader()
        writer.writerows({"group": name, **values} for name, values in groups.items())
    return Path(path)


def write_alignments(path: str | Path, outputs: Sequence[BatchOutputs], charset: Charset,
                     count: int = ALIGNMENT_SAMPLES) -> Path | None:
    """Alignment pictures (:func:`ctcocr.metrics.alignment_plots.alignment_figure`) of the first ``count`` kept
    samples, as a PNG; None when no images were kept."""
    from ctcocr.metrics.alignment_plots import alignment_figure

    batch = outputs[0]
    count = min(count, batch.images.size(0))
    if count == 0:
        return None
    figure = alignment_figure(batch.images[:count], batch.widths[:count],
                              batch.log_probs[:, :count], batch.lengths[:count],
                              batch.targets[:count], batch.target_lengths[:count], charset)
    figure.savefig(path)
    return Path(path)


def worst_rows(rows: Sequence[dict[str, Any]], count: int) -> list[int]:
    """Indices of the (at most) ``count`` rows of highest CER, worst first, ties in row order;
    rows read exactly are left out."""
    cer = {index: char_error_rate([row["prediction"]], [row["label"]])
           for index, row in enumerate(rows) if row["prediction"] != row["label"]}
    return sorted(cer, key=cer.__getitem__, reverse=True)[:count]


def _sample_images(outputs: Sequence[BatchOutputs],
                   indices: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Images (N, 1, H, W_max) and widths (N,) of the samples at ``indices`` (counted over all
    batches of ``outputs``), which must have kept their images."""
    located = [(batch, position) for batch in outputs for position in range(len(batch.texts))]
    images, widths = [], []
    for index in indices:
        batch, position = located[index]
        if position >= batch.images.size(0):
            raise ValueError(f"the image of sample {index} was not kept: collect the outputs "
                             "with keep_images=None")
        images.append(batch.images[position])
        widths.append(batch.widths[position])
    width = max(image.size(-1) for image in images)
    padded = [F.pad(image, (0, width - image.size(-1))) for image in images]
    return torch.stack(padded), torch.stack(widths)


def write_worst_lines(path: str | Path, outputs: Sequence[BatchOutputs],
                      rows: Sequence[dict[str, Any]], count: int = WORST_LINES) -> Path | None:
    """The :func:`worst_rows` as a PNG, one row per line: its image, the prediction (red) and the
    label (:func:`ctcocr.metrics.alignment_plots.prediction_grid`); None when every line is read
    exactly or ``count`` is 0. ``rows`` are ``outputs``' samples in order (their images kept)."""
    from ctcocr.metrics.alignment_plots import prediction_grid

    worst = worst_rows(rows, count)
    if not worst:
        return None
    images, widths = _sample_images(outputs, worst)
    grid = prediction_grid(images, widths, [rows[i]["prediction"] for i in worst],
                           [rows[i]["label"] for i in worst])
    pixels = grid.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(path)
    return Path(path)


def images_to_keep(worst_lines: int) -> int | None:
    """``collect_outputs``' ``keep_images`` for a report: every image when the worst lines are
    drawn (they are known only after decoding), else those of the alignment picture."""
    return None if worst_lines > 0 else ALIGNMENT_SAMPLES


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line per metric, for the terminal."""
    return "\n".join(f"{name:>20s}: {value:.4f}" if isinstance(value, float)
                     else f"{name:>20s}: {value}" for name, value in metrics.items())


def format_groups(groups: dict[str, dict[str, Any]], overall: dict[str, Any]) -> str:
    """A table of samples, CER and exact match per group and ``all`` (from the ``overall``
    metrics), for the terminal; empty for a single group."""
    if len(groups) < 2:
        return ""
    lines = [f"{'group':>20s}  {'samples':>7s}  {'cer':>7s}  {'exact':>7s}"]
    for name, values in [*groups.items(), ("all", overall)]:
        lines.append(f"{name:>20s}  {values['samples']:>7d}  {values['cer']:>7.4f}  "
                     f"{values['acc']:>7.4f}")
    return "\n".join(lines)


def evaluate_and_report(
    recognizer: LineReader, loader: Iterable[dict[str, Any]], output_dir: str | Path,
    device: str = "cpu", precision: str | int = "32-true", temperature: float | None = None,
    outputs: Sequence[BatchOutputs] | None = None, decoder: TextDecoder | None = None,
    worst_lines: int = WORST_LINES,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Evaluate (or score already ``outputs`` collected from ``loader``, with
    :func:`images_to_keep`'s images) and write every report file into ``output_dir``:
    metrics.json, predictions.csv, by_group.csv, reliability PNGs, alignments.png and
    worst_lines.png (the ``worst_lines`` lines of highest CER; 0: none). Returns the metrics and
    per-sample rows."""
    if outputs is None:
        outputs = collect_outputs(recognizer, loader, device, precision,
                                  images_to_keep(worst_lines))
    metrics, rows = evaluate_outputs(outputs, recognizer.charset, temperature, decoder)
    report = write_report(output_dir, metrics, rows)
    write_alignments(Path(output_dir) / "alignments.png", outputs, recognizer.charset)
    write_worst_lines(Path(output_dir) / "worst_lines.png", outputs, rows, worst_lines)
    log.info("wrote %s", report)
    return metrics, rows

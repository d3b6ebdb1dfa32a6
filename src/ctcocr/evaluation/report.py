"""The report files of an evaluation: metrics.json, predictions.csv, reliability diagrams and
alignment pictures; and the terminal summary."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctcocr.data.charset import Charset
from ctcocr.evaluation.metrics import N_BINS, evaluate_outputs
from ctcocr.evaluation.outputs import ALIGNMENT_SAMPLES, BatchOutputs, collect_outputs
from ctcocr.metrics import reliability_diagram

if TYPE_CHECKING:
    from ctcocr.recognition.decoding import TextDecoder
    from ctcocr.recognition.recognizer import LineReader

log = logging.getLogger(__name__)

ROW_FIELDS = ["source", "label", "prediction", "confidence", "path_confidence", "kept_confidence",
              "gt_nll"]


def write_report(
    output_dir: str | Path, metrics: dict[str, Any], rows: list[dict[str, Any]]
) -> Path:
    """Write ``metrics.json``, ``predictions.csv`` and the reliability diagram(s)
    (``reliability.png``, and ``reliability_ts.png`` after temperature scaling) into
    ``output_dir``; returns the JSON path."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    fields = [name for name in [*ROW_FIELDS, "confidence_ts"] if rows and name in rows[0]]
    with open(output_dir / "predictions.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields or ROW_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    if rows:
        correct = [float(row["prediction"] == row["label"]) for row in rows]
        reliability_diagram([row["confidence"] for row in rows], correct, N_BINS,
                            title="string confidence", path=output_dir / "reliability.png")
        if "confidence_ts" in rows[0]:
            title = f"after temperature scaling, T = {metrics['temperature']:.3g}"
            reliability_diagram([row["confidence_ts"] for row in rows], correct, N_BINS,
                                title=title, path=output_dir / "reliability_ts.png")
    return path


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


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line per metric, for the terminal."""
    return "\n".join(f"{name:>20s}: {value:.4f}" if isinstance(value, float)
                     else f"{name:>20s}: {value}" for name, value in metrics.items())


def evaluate_and_report(recognizer: LineReader, loader: Iterable[dict[str, Any]],
                        output_dir: str | Path, device: str = "cpu",
                        precision: str | int = "32-true", temperature: float | None = None,
                        outputs: Sequence[BatchOutputs] | None = None,
                        decoder: TextDecoder | None = None) -> dict[str, Any]:
    """Evaluate (or score already ``outputs`` collected from ``loader``) and write every report
    file into ``output_dir``: metrics.json, predictions.csv, reliability PNGs, alignments.png."""
    if outputs is None:
        outputs = collect_outputs(recognizer, loader, device, precision)
    metrics, rows = evaluate_outputs(outputs, recognizer.charset, temperature, decoder)
    report = write_report(output_dir, metrics, rows)
    write_alignments(Path(output_dir) / "alignments.png", outputs, recognizer.charset)
    log.info("wrote %s", report)
    return metrics

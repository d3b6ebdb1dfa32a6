"""Metrics of collected outputs: text accuracy, calibration of the sequence confidences, frame
statistics, and the same at a fitted temperature; with one row per sample; text accuracy per group
of samples (the first folder of a folder dataset's image paths)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ctcocr.data.charset import Charset
from ctcocr.evaluation.outputs import BatchOutputs, collect_outputs
from ctcocr.evaluation.scores import sequence_scores
from ctcocr.metrics import (
    TextMetrics,
    apply_temperature,
    brier_score,
    error_detection_auroc,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
)
from ctcocr.metrics.frames import SUM_NAMES, frame_means, frame_sums
from ctcocr.recognition.confidence import sequence_nll, string_confidence

if TYPE_CHECKING:
    from ctcocr.recognition.decoding import TextDecoder
    from ctcocr.recognition.recognizer import LineReader

N_BINS = 15

#: The group of samples outside any folder: synthetic, LMDB, top-level images of a folder dataset.
UNGROUPED = "ungrouped"

# a folder dataset's source: "<label file>:<line> (<image path relative to the folder>)"
_FOLDER_SOURCE = re.compile(r"^.*:\d+ \((?P<path>.+)\)$")


def calibration_metrics(conf: Tensor, correct: Tensor, suffix: str = "") -> dict[str, float]:
    """ECE, MCE (15 equal-width bins), Brier score and error-detection AUROC of (N,) confidences."""
    return {f"ece{suffix}": expected_calibration_error(conf, correct, N_BINS),
            f"mce{suffix}": maximum_calibration_error(conf, correct, N_BINS),
            f"brier{suffix}": brier_score(conf, correct),
            f"auroc{suffix}": error_detection_auroc(conf, correct)}


def _mean_finite_nll(nll: Tensor) -> tuple[float, int]:
    """Mean ground-truth NLL over the samples that can emit their label, and how many cannot."""
    finite = torch.isfinite(nll)
    value = negative_log_likelihood(-nll[finite]) if finite.any() else float("nan")
    return value, int((~finite).sum())


def evaluate_outputs(
    outputs: Sequence[BatchOutputs], charset: Charset, temperature: float | None = None,
    decoder: TextDecoder | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics and per-sample rows of collected outputs.

    Metrics: ``acc, acc_ci, cer, ned, samples``; calibration of ``confidence`` (``ece, mce, brier,
    auroc``) and ECE/AUROC of the other confidences; ``nll`` (mean ground-truth NLL per line over
    the ``infeasible``-excluded samples); the frame statistics ``blank_ratio, entropy_blank,
    entropy_nonblank, peakiness, mean_blank_posterior``; with ``temperature``: ``temperature`` and
    ``ece_ts, mce_ts, brier_ts, auroc_ts, nll_ts`` at that temperature (predictions do not change).
    Strings are decoded greedily, or by ``decoder`` (e.g. beam search with a lexicon).
    """
    blank = charset.blank
    rows: list[dict[str, Any]] = []
    text_metrics = TextMetrics(sync_on_compute=False)  # one process evaluates, also after DDP
    sums = dict.fromkeys(SUM_NAMES, torch.zeros((), dtype=torch.float64))
    tempered_conf, tempered_nll = [], []
    for batch in outputs:
        scores = sequence_scores(batch.log_probs, batch.lengths, blank, decoder)
        predictions = [charset.decode(tokens) for tokens in scores.tokens]
        nll = sequence_nll(batch.log_probs, batch.lengths, batch.targets, batch.target_lengths,
                           blank)
        text_metrics.update(predictions, batch.texts)
        for name, value in frame_sums(batch.log_probs, batch.lengths, blank).items():
            sums[name] = sums[name] + value
        for b, prediction in enumerate(predictions):
            rows.append({"source": batch.sources[b], "label": batch.texts[b],
                         "prediction": prediction,
                         "confidence": float(scores.confidence[b]),
                         "path_confidence": float(scores.path_confidence[b]),
                         "kept_confidence": float(scores.kept_confidence[b]),
                         "gt_nll": float(nll[b])})
        if temperature is not None:
            tempered = apply_temperature(batch.log_probs, temperature)
            tempered_conf.append(string_confidence(tempered, batch.lengths, scores.tokens, blank))
            tempered_nll.append(sequence_nll(tempered, batch.lengths, batch.targets,
                                             batch.target_lengths, blank))
    metrics: dict[str, Any] = {name: float(value) for name, value in text_metrics.compute().items()}
    metrics["samples"] = len(rows)
    correct = torch.tensor([row["prediction"] == row["label"] for row in rows], dtype=torch.float64)
    column = {name: torch.tensor([row[name] for row in rows], dtype=torch.float64)
              for name in ("confidence", "path_confidence", "kept_confidence", "gt_nll")}
    metrics.update(calibration_metrics(column["confidence"], correct))
    for name, suffix in (("path_confidence", "_path"), ("kept_confidence", "_kept")):
        metrics[f"ece{suffix}"] = expected_calibration_error(column[name], correct, N_BINS)
        metrics[f"auroc{suffix}"] = error_detection_auroc(column[name], correct)
    metrics["nll"], metrics["infeasible"] = _mean_finite_nll(column["gt_nll"])
    metrics.update(frame_means(sums))
    if temperature is not None:
        conf = torch.cat(tempered_conf)
        for row, value in zip(rows, conf.tolist()):
            row["confidence_ts"] = value
        metrics["temperature"] = temperature
        metrics.update(calibration_metrics(conf, correct, "_ts"))
        metrics["nll_ts"], _ = _mean_finite_nll(torch.cat(tempered_nll))
    return metrics, rows


def evaluate(
    recognizer: LineReader, loader: Iterable[dict[str, Any]], device: str = "cpu",
    precision: str | int = "32-true", temperature: float | None = None,
    decoder: TextDecoder | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Predict every sample of ``loader``; return :func:`evaluate_outputs`'s metrics and rows."""
    outputs = collect_outputs(recognizer, loader, device, precision, keep_images=0)
    return evaluate_outputs(outputs, recognizer.charset, temperature, decoder)


def sample_group(source: str) -> str:
    """The first folder of a folder-dataset sample's image path (``camera_book`` for
    ``data/real_lines/gt.txt:50 (camera_book/p1_l03.png)``); :data:`UNGROUPED` for other sources
    and for images at the top of the folder."""
    match = _FOLDER_SOURCE.match(source)
    if match is None:
        return UNGROUPED
    parts = PurePosixPath(match["path"].replace("\\", "/")).parts
    return parts[0] if len(parts) > 1 else UNGROUPED


def group_metrics(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | int]]:
    """Text metrics of each group of rows (by :func:`sample_group` of the row's ``source``), in
    group-name order: ``samples`` and :class:`~ctcocr.metrics.TextMetrics`' ``acc, acc_ci, cer,
    ned``."""
    texts: dict[str, tuple[list[str], list[str]]] = {}
    for row in rows:
        predictions, labels = texts.setdefault(sample_group(row["source"]), ([], []))
        predictions.append(row["prediction"])
        labels.append(row["label"])
    groups: dict[str, dict[str, float | int]] = {}
    for name in sorted(texts):
        metric = TextMetrics(sync_on_compute=False)
        metric.update(*texts[name])
        groups[name] = {"samples": len(texts[name][0]), **metric.compute()}
    return groups

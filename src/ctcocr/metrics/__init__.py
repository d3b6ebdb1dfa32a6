"""Evaluation metrics: text accuracy and edit distances, calibration, frame-level statistics."""

from ctcocr.metrics.calibration import (
    ReliabilityBins,
    apply_temperature,
    brier_score,
    error_detection_auroc,
    expected_calibration_error,
    fit_temperature,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from ctcocr.metrics.frames import FrameStatistics, frame_statistics
from ctcocr.metrics.plots import reliability_diagram
from ctcocr.metrics.text import (
    TextMetrics,
    alnum_lower,
    char_error_rate,
    normalized_edit_distance,
    word_accuracy,
)

__all__ = [
    "FrameStatistics",
    "ReliabilityBins",
    "TextMetrics",
    "alnum_lower",
    "apply_temperature",
    "brier_score",
    "char_error_rate",
    "error_detection_auroc",
    "expected_calibration_error",
    "fit_temperature",
    "frame_statistics",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "normalized_edit_distance",
    "reliability_bins",
    "reliability_diagram",
    "word_accuracy",
]

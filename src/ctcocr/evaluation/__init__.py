"""Evaluate a recognizer on a dataloader: text metrics, sequence confidences and their calibration
(:mod:`~ctcocr.evaluation.scores`), alignment behaviour, post-hoc temperature scaling, per-sample
predictions, and the report files."""

from ctcocr.evaluation.metrics import N_BINS, calibration_metrics, evaluate, evaluate_outputs
from ctcocr.evaluation.outputs import (
    ALIGNMENT_SAMPLES,
    BatchOutputs,
    collect_outputs,
    fit_outputs_temperature,
)
from ctcocr.evaluation.report import (
    ROW_FIELDS,
    evaluate_and_report,
    format_metrics,
    write_alignments,
    write_report,
)
from ctcocr.evaluation.scores import SequenceScores, sequence_scores
from ctcocr.evaluation.sets import evaluate_sets, split_loader
from ctcocr.evaluation.statistics import CalibrationStatistics

__all__ = [
    "ALIGNMENT_SAMPLES",
    "N_BINS",
    "ROW_FIELDS",
    "BatchOutputs",
    "CalibrationStatistics",
    "SequenceScores",
    "calibration_metrics",
    "collect_outputs",
    "evaluate",
    "evaluate_and_report",
    "evaluate_outputs",
    "evaluate_sets",
    "fit_outputs_temperature",
    "format_metrics",
    "sequence_scores",
    "split_loader",
    "write_alignments",
    "write_report",
]

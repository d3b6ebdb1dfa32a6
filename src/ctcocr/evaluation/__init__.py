"""Evaluate a recognizer on a dataloader: text metrics, sequence confidences and their calibration
(:mod:`~ctcocr.evaluation.scores`), alignment behaviour, post-hoc temperature scaling, per-sample
predictions, and the report files."""

from ctcocr.evaluation.metrics import N_BINS, calibration_metrics, evaluate, evaluate_outputs
from ctcocr.evaluation.outputs import (
    ALIGNMENT_SAMPLES,
    BatchOutputs,
    accelerator_device,
    collect_outputs,
    fit_outputs_temperature,
    inference_context,
    load_module,
)
from ctcocr.evaluation.report import (
    ROW_FIELDS,
    evaluate_and_report,
    format_metrics,
    write_alignments,
    write_report,
)
from ctcocr.evaluation.scores import (
    SequenceScores,
    sequence_nll,
    sequence_scores,
    string_confidence,
)
from ctcocr.evaluation.sets import EvaluateBestCheckpoint, evaluate_sets, split_loader
from ctcocr.evaluation.statistics import CalibrationStatistics

__all__ = [
    "ALIGNMENT_SAMPLES",
    "N_BINS",
    "ROW_FIELDS",
    "BatchOutputs",
    "CalibrationStatistics",
    "EvaluateBestCheckpoint",
    "SequenceScores",
    "accelerator_device",
    "calibration_metrics",
    "collect_outputs",
    "evaluate",
    "evaluate_and_report",
    "evaluate_outputs",
    "evaluate_sets",
    "fit_outputs_temperature",
    "format_metrics",
    "inference_context",
    "load_module",
    "sequence_nll",
    "sequence_scores",
    "split_loader",
    "string_confidence",
    "write_alignments",
    "write_report",
]

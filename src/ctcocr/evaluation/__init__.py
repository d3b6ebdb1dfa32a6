"""Evaluate a recognizer on a dataloader: text metrics, sequence confidences and their calibration
(:mod:`~ctcocr.evaluation.scores`), alignment behaviour, post-hoc temperature scaling, per-sample
predictions, text metrics per group of samples, and the report files."""

from ctcocr.evaluation.metrics import (
    N_BINS,
    UNGROUPED,
    calibration_metrics,
    evaluate,
    evaluate_outputs,
    group_metrics,
    sample_group,
)
from ctcocr.evaluation.outputs import (
    ALIGNMENT_SAMPLES,
    BatchOutputs,
    collect_outputs,
    fit_outputs_temperature,
)
from ctcocr.evaluation.report import (
    GROUP_FIELDS,
    ROW_FIELDS,
    WORST_LINES,
    evaluate_and_report,
    format_groups,
    format_metrics,
    images_to_keep,
    worst_rows,
    write_alignments,
    write_groups,
    write_report,
    write_worst_lines,
)
from ctcocr.evaluation.scores import SequenceScores, sequence_scores
from ctcocr.evaluation.sets import evaluate_sets, split_loader
from ctcocr.evaluation.statistics import CalibrationStatistics

__all__ = [
    "ALIGNMENT_SAMPLES",
    "GROUP_FIELDS",
    "N_BINS",
    "ROW_FIELDS",
    "UNGROUPED",
    "WORST_LINES",
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
    "format_groups",
    "format_metrics",
    "group_metrics",
    "images_to_keep",
    "sample_group",
    "sequence_scores",
    "split_loader",
    "worst_rows",
    "write_alignments",
    "write_groups",
    "write_report",
    "write_worst_lines",
]

"""Several evaluation sets after training (the loss study) and for ctcocr-eval: build the split
loaders, fit temperature scaling on one set, and report every set."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ctcocr.data.errors import DatasetError
from ctcocr.evaluation.metrics import group_metrics
from ctcocr.evaluation.outputs import BatchOutputs, collect_outputs, fit_outputs_temperature
from ctcocr.evaluation.report import (
    WORST_LINES,
    evaluate_and_report,
    format_groups,
    format_metrics,
    images_to_keep,
)

if TYPE_CHECKING:
    from ctcocr.recognition.decoding import TextDecoder
    from ctcocr.recognition.recognizer import LineReader

log = logging.getLogger(__name__)


def split_loader(data: DictConfig, recognizer: LineReader, split: str) -> Iterable[dict[str, Any]]:
    """The ``split`` ("val" or "test") loader of a data config, built for the recognizer's charset
    and preprocessing (which replace the data config's own height and width limits)."""
    if split not in ("val", "test"):
        raise DatasetError(f"split must be 'val' or 'test', got {split!r}")
    data = OmegaConf.merge(data, recognizer.preprocessing)
    # evaluation reads no training data
    datamodule = instantiate(data, charset=recognizer.charset, train=None)
    datamodule.setup("validate" if split == "val" else "test")
    return datamodule.val_dataloader() if split == "val" else datamodule.test_dataloader()


def evaluate_sets(recognizer: LineReader, sets: dict[str, Iterable[dict[str, Any]]],
                  output_dirs: dict[str, str | Path], device: str = "cpu",
                  precision: str | int = "32-true",
                  temperature_set: str | None = None,
                  decoder: TextDecoder | None = None,
                  worst_lines: int = WORST_LINES) -> dict[str, dict[str, Any]]:
    """Evaluate ``recognizer`` on each named loader of ``sets`` that has an entry in ``output_dirs``
    and write its report files there (:func:`ctcocr.evaluation.report.evaluate_and_report`, with
    ``worst_lines``); print each set's metrics, and its per-group table when it has several groups.

    With ``temperature_set`` (a name in ``sets``, reported or not), T is fitted on that set's
    outputs first and every reported set is also scored at T (when T cannot be fitted, a warning
    says why and the reports leave the ``_ts`` metrics out). Strings are decoded greedily, or by
    ``decoder``. Returns the metrics by set name.
    """
    if temperature_set is not None and temperature_set not in sets:
        raise ValueError(f"temperature_set {temperature_set!r} is not one of {sorted(sets)}")
    collected: dict[str, list[BatchOutputs]] = {}
    temperature = None
    if temperature_set is not None:
        keep = images_to_keep(worst_lines) if temperature_set in output_dirs else 0
        collected[temperature_set] = collect_outputs(recognizer, sets[temperature_set], device,
                                                     precision, keep)
        try:
            temperature = fit_outputs_temperature(collected[temperature_set], recognizer.charset.blank)
            log.info("temperature fitted on %s: %.4f", temperature_set, temperature)
        except ValueError as error:  # e.g. no label of the set fits its frames: report without T
            log.warning("temperature scaling skipped: %s", error)
    results = {}
    for name, output_dir in output_dirs.items():
        results[name], rows = evaluate_and_report(
            recognizer, sets[name], output_dir, device, precision, temperature,
            collected.pop(name, None), decoder, worst_lines)
        print(f"{name} metrics ({output_dir}):\n{format_metrics(results[name])}")
        if table := format_groups(group_metrics(rows), results[name]):
            print(f"{name} metrics by group:\n{table}")
    return results

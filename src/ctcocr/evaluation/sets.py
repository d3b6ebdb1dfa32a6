"""Several evaluation sets after training (the loss study) and for ctcocr-eval: build the split
loaders, fit temperature scaling on one set, and report every set."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.utils import instantiate
from lightning import Callback, LightningModule, Trainer
from omegaconf import DictConfig

from ctcocr.data.charset import Charset
from ctcocr.data.policy import DatasetError
from ctcocr.evaluation.outputs import (
    BatchOutputs,
    collect_outputs,
    fit_outputs_temperature,
    load_module,
)
from ctcocr.evaluation.report import evaluate_and_report, format_metrics

if TYPE_CHECKING:
    from ctcocr.decoding import TextDecoder
    from ctcocr.module import RecognizerModule

log = logging.getLogger(__name__)


def split_loader(data: DictConfig, charset: Charset, split: str) -> Iterable[dict[str, Any]]:
    """The ``split`` ("val" or "test") loader of a data config, built for ``charset``."""
    if split not in ("val", "test"):
        raise DatasetError(f"split must be 'val' or 'test', got {split!r}")
    datamodule = instantiate(data, charset=charset, train=None)  # evaluation reads no training data
    datamodule.setup("validate" if split == "val" else "test")
    return datamodule.val_dataloader() if split == "val" else datamodule.test_dataloader()


def evaluate_sets(module: RecognizerModule, sets: dict[str, Iterable[dict[str, Any]]],
                  output_dirs: dict[str, str | Path], device: str = "cpu",
                  precision: str | int = "32-true",
                  temperature_set: str | None = None,
                  decoder: TextDecoder | None = None) -> dict[str, dict[str, Any]]:
    """Evaluate ``module`` on each named loader of ``sets`` that has an entry in ``output_dirs``
    and write its report files there (:func:`ctcocr.evaluation.report.evaluate_and_report`).

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
        collected[temperature_set] = collect_outputs(module, sets[temperature_set], device,
                                                     precision)
        try:
            temperature = fit_outputs_temperature(collected[temperature_set], module.charset.blank)
            log.info("temperature fitted on %s: %.4f", temperature_set, temperature)
        except ValueError as error:  # e.g. no label of the set fits its frames: report without T
            log.warning("temperature scaling skipped: %s", error)
    results = {}
    for name, output_dir in output_dirs.items():
        results[name] = evaluate_and_report(module, sets[name], output_dir, device, precision,
                                            temperature, collected.pop(name, None), decoder)
        print(f"{name} metrics ({output_dir}):\n{format_metrics(results[name])}")
    return results


class EvaluateBestCheckpoint(Callback):
    """After ``fit``, on the main process: evaluate the best checkpoint (the trainer's first
    ModelCheckpoint; the last weights without one) on several data sets, each written to
    ``output_dir/<name>`` by :func:`evaluate_sets`.

    Args:
        sets: name -> ``{data: <data config>, split: val | test}``.
        output_dir: the run folder.
        temperature_set: the set whose outputs fit temperature scaling's T (None: no scaling).

    Give it ``_recursive_: false`` in its Hydra config so the data configs arrive unbuilt.
    """

    def __init__(
        self, sets: DictConfig, output_dir: str, temperature_set: str | None = "val"
    ) -> None:
        super().__init__()
        self.sets = sets
        self.output_dir = output_dir
        self.temperature_set = temperature_set

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        module = load_module(best) if best else pl_module
        log.info("evaluating %s", best or "the last weights")
        loaders = {name: split_loader(spec.data, module.charset, spec.split)
                   for name, spec in self.sets.items()}
        was_training = module.training
        output_dirs = {name: Path(self.output_dir) / name for name in loaders}
        evaluate_sets(module, loaders, output_dirs, str(trainer.strategy.root_device),
                      trainer.precision, self.temperature_set)
        module.train(was_training)

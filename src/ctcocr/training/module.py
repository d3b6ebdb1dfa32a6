"""The LightningModule: a recognizer, a CTC loss variant, greedy decoding and text metrics."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import torch
from hydra.utils import instantiate
from lightning import LightningModule
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from ctcocr.ctc import greedy_decode, required_frames
from ctcocr.data.charset import Charset
from ctcocr.evaluation import CalibrationStatistics
from ctcocr.metrics import TextMetrics
from ctcocr.metrics.alignment_plots import alignment_figure, figure_to_tensor, prediction_grid
from ctcocr.recognition.recognizer import PREPROCESSING_KEYS, Recognizer

log = logging.getLogger(__name__)
ALIGNMENT_IMAGES = 4  # validation samples drawn in the TensorBoard alignment picture


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """A resolved plain-dict copy of a config node (hyperparameters stored in checkpoints)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


class RecognizerModule(LightningModule):
    """Trains and evaluates a CTC recognizer; every part is built from its Hydra config.

    The configs (plain dicts) are saved as hyperparameters, the charset as its characters, so a
    checkpoint is self-contained: :meth:`Recognizer.from_checkpoint` reads it without Lightning,
    ``RecognizerModule.load_from_checkpoint(path)`` with the loss and optimizer too.
    """

    def __init__(
        self,
        charset: dict[str, Any],
        model: dict[str, Any],
        preprocessing: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        channels_last: bool = False,
        num_logged_images: int = 16,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.recognizer = Recognizer.from_config(charset, model, preprocessing)
        self.hparams["charset"] = self.charset.to_config()  # the characters, not a file path
        self.loss = instantiate(loss)
        if channels_last:
            self.recognizer.to(memory_format=torch.channels_last)
        self.val_metrics = TextMetrics()
        self.test_metrics = TextMetrics()
        self.val_calibration = CalibrationStatistics(blank=self.charset.blank)
        self._logged_batch: dict[str, Any] | None = None

    @classmethod
    def from_train_config(cls, cfg: DictConfig,
                          charset: dict[str, Any] | None = None) -> RecognizerModule:
        """The module a composed ``train.yaml`` describes: charset (or ``charset``), model, loss,
        optimizer, scheduler and ``module`` settings; the preprocessing is the data config's."""
        return cls(
            charset=charset or to_container(cfg.charset), model=to_container(cfg.model),
            preprocessing={key: cfg.data[key] for key in PREPROCESSING_KEYS},
            loss=to_container(cfg.loss), optimizer=to_container(cfg.optimizer),
            scheduler=to_container(cfg.scheduler) or None, **cfg.get("module", {}),
        )

    @property
    def charset(self) -> Charset:
        """The recognizer's classes."""
        return self.recognizer.charset

    def forward(self, images: Tensor, widths: Tensor) -> tuple[Tensor, Tensor]:
        """Images (B, 1, H, W) and true widths (B,) -> log-probs (T, B, C) and frames (B,)."""
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.recognizer(images, widths)

    def _loss(self, log_probs: Tensor, lengths: Tensor, batch: dict[str, Any], stage: str) -> Tensor:
        """The configured loss on the samples the model can emit; infeasible ones are dropped and counted."""
        targets, target_lengths = batch["targets"], batch["target_lengths"]
        feasible = required_frames(targets, target_lengths) <= lengths
        dropped = int((~feasible).sum())
        batch_size = len(feasible)
        self.log(f"{stage}/dropped_infeasible", float(dropped), on_step=False, on_epoch=True,
                 reduce_fx="sum", batch_size=batch_size, sync_dist=True)
        self.log(f"{stage}/skipped_samples", float(batch.get("num_skipped", 0)), on_step=False,
                 on_epoch=True, reduce_fx="sum", batch_size=batch_size, sync_dist=True)
        if dropped:
            log.debug("dropped %d labels longer than their frames allow: %s", dropped,
                      [s for s, ok in zip(batch["sources"], feasible.tolist()) if not ok])
        if not feasible.any():
            return log_probs.sum() * 0.0
        output = self.loss(log_probs[:, feasible], targets[feasible], lengths[feasible],
                           target_lengths[feasible])
        kept = int(feasible.sum())
        self.log(f"{stage}/loss", output.loss, prog_bar=stage == "train", batch_size=kept, sync_dist=stage != "train")
        self.log(f"{stage}/ctc", output.ctc, batch_size=kept, sync_dist=stage != "train")
        self.log(f"{stage}/infinite", float(output.num_infinite), on_step=False, on_epoch=True,
                 reduce_fx="sum", batch_size=kept, sync_dist=True)
        return output.loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        log_probs, lengths = self(batch["images"], batch["widths"])
        return self._loss(log_probs, lengths, batch, "train")

    def _evaluate(self, batch: dict[str, Any], stage: str, metrics: TextMetrics) -> None:
        log_probs, lengths = self(batch["images"], batch["widths"])
        self._loss(log_probs, lengths, batch, stage)
        tokens = greedy_decode(log_probs, lengths, self.charset.blank).tokens
        predictions = [self.charset.decode(sequence) for sequence in tokens]
        metrics.update(predictions, batch["texts"])
        if stage == "val":
            self.val_calibration.update(log_probs, lengths, batch["targets"],
                                        batch["target_lengths"], predictions, batch["texts"])
        if stage == "val" and self._logged_batch is None:
            count = self.hparams.num_logged_images
            self._logged_batch = {"images": batch["images"][:count].detach().float().cpu(),
                                  "widths": batch["widths"][:count].cpu(),
                                  "predictions": predictions[:count],
                                  "labels": batch["texts"][:count],
                                  "log_probs": log_probs[:, :count].detach().float().cpu(),
                                  "lengths": lengths[:count].cpu(),
                                  "targets": batch["targets"][:count].cpu(),
                                  "target_lengths": batch["target_lengths"][:count].cpu()}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def _log_metrics(self, stage: str, metrics: TextMetrics) -> None:
        for name, value in metrics.compute().items():
            # compute() already gathered every process's counts: the mean over processes is a no-op
            self.log(f"{stage}/{name}", value, prog_bar=name in ("acc", "cer"), sync_dist=True)
        metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)
        for name, value in self.val_calibration.compute().items():
            self.log(f"val/{name}", value, sync_dist=True)  # already gathered: a no-op mean
        self.val_calibration.reset()
        self._log_prediction_grid()

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)

    def _log_prediction_grid(self) -> None:
        """A grid of validation images with their predictions, and alignment pictures of the first
        few, to TensorBoard when it is the logger."""
        batch, self._logged_batch = self._logged_batch, None
        experiment = getattr(self.logger, "experiment", None)
        if batch is None or not hasattr(experiment, "add_image") or self.trainer.sanity_checking:
            return
        grid = prediction_grid(batch["images"], batch["widths"], batch["predictions"], batch["labels"])
        experiment.add_image("val/predictions", grid, self.global_step)
        shown = slice(0, ALIGNMENT_IMAGES)
        figure = alignment_figure(batch["images"][shown], batch["widths"][shown],
                                  batch["log_probs"][:, shown], batch["lengths"][shown],
                                  batch["targets"][shown], batch["target_lengths"][shown],
                                  self.charset)
        experiment.add_image("val/alignments", figure_to_tensor(figure), self.global_step)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = instantiate(self.hparams.optimizer)(params=self.parameters())
        if not self.hparams.scheduler:
            return {"optimizer": optimizer}
        factory = instantiate(self.hparams.scheduler)
        steps = int(self.trainer.estimated_stepping_batches)
        accepted = inspect.signature(factory.func).parameters
        length = {name: steps for name in ("total_steps", "T_max") if name in accepted}
        scheduler = factory(optimizer=optimizer, **length)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

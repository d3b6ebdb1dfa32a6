"""Lightning callbacks of the training runs."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import BaseFinetuning
from omegaconf import DictConfig
from torch.optim import Optimizer

from ctcocr.evaluation import evaluate_sets, split_loader
from ctcocr.recognition import Recognizer

log = logging.getLogger(__name__)


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
        recognizer = Recognizer.from_checkpoint(best) if best else pl_module.recognizer
        log.info("evaluating %s", best or "the last weights")
        loaders = {name: split_loader(spec.data, recognizer, spec.split)
                   for name, spec in self.sets.items()}
        was_training = recognizer.training
        output_dirs = {name: Path(self.output_dir) / name for name in loaders}
        evaluate_sets(recognizer, loaders, output_dirs, str(trainer.strategy.root_device),
                      temperature_set=self.temperature_set)
        recognizer.train(was_training)


class FreezeBackbone(Callback):
    """Keep the recognizer's convolutional backbone frozen (no gradient, batch-norm statistics
    kept) for the first ``steps`` optimizer steps of a run, then train it too: when fine-tuning,
    the new output rows settle before they move the features. Resumed runs past ``steps`` start
    unfrozen."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        self.steps = steps
        self.frozen = False

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.global_step < self.steps:
            BaseFinetuning.freeze(pl_module.recognizer.model.backbone, train_bn=False)
            self.frozen = True
            log.info("backbone frozen for the first %d steps", self.steps)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: object,
                             batch_idx: int) -> None:
        if self.frozen and trainer.global_step >= self.steps:
            BaseFinetuning.make_trainable(pl_module.recognizer.model.backbone)
            self.frozen = False
            log.info("backbone unfrozen at step %d", trainer.global_step)


class TrainingDiverged(RuntimeError):
    """Too many optimizer steps in a row had non-finite gradients; the message names the step and
    the samples of the last batch."""


class SkipNonFiniteSteps(Callback):
    """Skip every optimizer step whose gradients hold NaN or inf (a non-finite loss gives such
    gradients too): the gradients are dropped and the buffers (batch-norm statistics, which a
    NaN input would poison) restored, so the weights, buffers and optimizer state stay as they
    were (the schedule still advances). Skipped steps are counted (``train/skipped_steps``); after
    ``max_consecutive`` in a row, training stops with :class:`TrainingDiverged`, and the last
    checkpoint holds the last good weights."""

    def __init__(self, max_consecutive: int = 10) -> None:
        super().__init__()
        if max_consecutive < 1:
            raise ValueError(f"max_consecutive must be >= 1, got {max_consecutive}")
        self.max_consecutive = max_consecutive
        self.skipped = 0
        self.consecutive = 0
        self.sources: list[str] = []
        self.buffers: list[torch.Tensor] = []

    def state_dict(self) -> dict[str, int]:
        """The counts, so that a resumed run goes on counting."""
        return {"skipped": self.skipped, "consecutive": self.consecutive}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.skipped = state_dict["skipped"]
        self.consecutive = state_dict["consecutive"]

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: dict,
                             batch_idx: int) -> None:
        self.sources = list(batch.get("sources", []))
        self.buffers = [buffer.detach().clone() for buffer in pl_module.buffers()]

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule,
                                 optimizer: Optimizer) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]
                  if p.grad is not None]
        if not params or bool(torch.stack([torch.isfinite(p.grad).all() for p in params]).all()):
            self.consecutive = 0
            return
        for param in params:
            param.grad = None
        with torch.no_grad():
            for buffer, saved in zip(pl_module.buffers(), self.buffers):
                buffer.copy_(saved)
        self.skipped += 1
        self.consecutive += 1
        pl_module.log("train/skipped_steps", float(self.skipped), on_step=True, on_epoch=False)
        shown = ", ".join(self.sources[:4]) + (", ..." if len(self.sources) > 4 else "")
        log.warning("step %d skipped: non-finite gradients (batch: %s)", trainer.global_step,
                    shown)
        if self.consecutive >= self.max_consecutive:
            raise TrainingDiverged(
                f"training stopped at step {trainer.global_step}: {self.consecutive} optimizer "
                f"steps in a row had non-finite gradients (last batch: {shown}); the last "
                f"checkpoint holds the last good weights; try a lower optimizer.lr")

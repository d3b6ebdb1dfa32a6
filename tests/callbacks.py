"""Callbacks that tests inject through Hydra (``+callbacks.<name>._target_=tests.callbacks...``)."""

from __future__ import annotations

from typing import Any

from lightning import Callback, LightningModule, Trainer


class StopAtStep(Callback):
    """Interrupt training after ``step`` optimizer steps, as a user stopping a run would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True

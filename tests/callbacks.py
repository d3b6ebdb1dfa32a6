"""Callbacks that tests inject through Hydra (``+callbacks.<name>._target_=tests.callbacks...``)."""

from __future__ import annotations

import time
from typing import Any

from lightning import Callback, LightningModule, Trainer


class StopAtStep(Callback):
    """Interrupt training after ``step`` optimizer steps, as a user stopping a run would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


class Pace(Callback):
    """Sleep ``seconds`` after every training batch, so that a test's signal lands mid-run."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        time.sleep(self.seconds)

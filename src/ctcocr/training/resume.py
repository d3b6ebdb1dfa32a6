"""Exact resume: random streams that depend only on the batch's position, checkpoints that a kill
cannot corrupt, a checkpoint on preemption signals, and ``ckpt_path=last``.

The data order resumes through the stateful training loader
(:class:`ctcocr.data.sampler.ResumableDataLoader`); the weights, optimizer, scheduler, step and
loop progress through Lightning's checkpoint.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

log = logging.getLogger(__name__)


class SeedEachBatch(Callback):
    """Before every training batch, seed Python's, NumPy's and torch's (CPU and CUDA) global
    random generators from (``seed``, optimizer step, batch within the accumulation, rank).

    Dropout and anything else drawing from the global generators inside a step then depend only
    on where the batch is, never on what ran before it (validation, a restart, worker start-up),
    so a resumed run draws exactly what the uninterrupted one drew. ``seed`` None draws one; it
    is kept in the checkpoint so a resumed run goes on with it.
    """

    def __init__(self, seed: int | None = None) -> None:
        super().__init__()
        self.seed = secrets.randbelow(2**31) if seed is None else seed

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        # the step, not (epoch, batch_idx): a run resumed from the end of an epoch reports the
        # old epoch's numbering for its first batch
        within = batch_idx % trainer.accumulate_grad_batches
        key = [self.seed, trainer.global_step, within, trainer.global_rank]
        batch_seed = int(np.random.SeedSequence(key).generate_state(1)[0])
        random.seed(batch_seed)
        np.random.seed(batch_seed)
        torch.manual_seed(batch_seed)  # every CUDA device too

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.seed = state_dict["seed"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Local checkpoints written to a hidden temporary file beside the target, flushed to disk,
    then renamed over it: a kill or power loss during the write leaves the previous file whole.

    (Lightning's own writer renames from the system's temporary folder, which is a copy, not an
    atomic rename, when that folder is on another file system, and never syncs to disk.) Paths
    with a URL scheme go through Lightning's writer.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path,
                        storage_options: Any | None = None) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        with open(partial, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself
        finally:
            os.close(folder)


class Preempted(SystemExit):
    """The run was stopped by a signal after saving its checkpoint; the exit code is 128 + the
    signal number, as for a process the signal ended."""


class CheckpointOnSignal(Callback):
    """On SIGTERM or SIGUSR1 (what schedulers send before preemption), finish the current
    training batch, write ``dirpath/filename`` and exit with :class:`Preempted`.

    The handlers replace Lightning's SIGTERM handler (which stops without a checkpoint) while
    ``fit`` trains, and the previous ones come back afterwards.
    """

    def __init__(self, dirpath: str, filename: str = "last.ckpt",
                 signals: tuple[str, ...] = ("SIGTERM", "SIGUSR1")) -> None:
        super().__init__()
        self.path = Path(dirpath) / filename
        self.signals = [signal.Signals[name] for name in signals]
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(signum)
        log.warning("%s received: saving a checkpoint after this batch", self.received.name)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.received = None
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if self.received is None:
            return
        trainer.save_checkpoint(self.path)
        for logger in trainer.loggers:  # what they buffer since their last write
            logger.save()
        message = (f"stopped by {self.received.name} at step {trainer.global_step}; checkpoint "
                   f"{self.path}; resume with ckpt_path={self.path}")
        log.warning(message)
        raise Preempted(128 + self.received)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


def latest_last_checkpoint(runs_dir: str | Path) -> Path:
    """The most recently written ``<run>/checkpoints/last.ckpt`` under ``runs_dir``;
    FileNotFoundError naming ``runs_dir`` when there is none."""
    found = list(Path(runs_dir).glob("*/checkpoints/last.ckpt"))
    if not found:
        raise FileNotFoundError(f"ckpt_path=last: no run under {runs_dir} has checkpoints/last.ckpt")
    return max(found, key=lambda path: path.stat().st_mtime)

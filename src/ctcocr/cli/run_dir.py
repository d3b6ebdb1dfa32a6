"""A Hydra callback that checks, before Hydra creates it, that the run folder can be written:
an unwritable output folder is one line on stderr and exit code 2, not a traceback from Hydra."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def unwritable_reason(folder: Path) -> str | None:
    """Why ``folder`` cannot be created or written to, or None when it can: its nearest existing
    ancestor must be a writable folder."""
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


class RunDirCheck(Callback):
    """Stops a run (exit code 2) whose ``hydra.run.dir`` or ``hydra.sweep.dir`` cannot be written."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.sweep.dir)

    @staticmethod
    def _check(folder: str) -> None:
        reason = unwritable_reason(Path(folder))
        if reason:
            print(f"error: cannot write the run folder {folder}: {reason}", file=sys.stderr)
            raise SystemExit(2)

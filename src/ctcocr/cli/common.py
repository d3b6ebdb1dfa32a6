"""What every entry point does around its task: threads, config printing, callbacks and loggers,
and turning bad user input into a one-line error instead of a traceback."""

from __future__ import annotations

import functools
import logging
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ctcocr.data.errors import DatasetError
from ctcocr.recognition.recognizer import ModelFileError
from ctcocr.training.callbacks import TrainingDiverged
from ctcocr.training.finetune import FineTuneError
from ctcocr.training.precision import if_native_bf16

log = logging.getLogger(__name__)
# ${if_native_bf16:A,B} in the configs: A where the CPU has native bfloat16 kernels, else B
OmegaConf.register_new_resolver("if_native_bf16", if_native_bf16, replace=True)
Task = TypeVar("Task", bound=Callable[..., Any])


class LightningNoise(logging.Filter):
    """Drops Lightning's product tips, and its accelerator lines unless ``verbose``."""

    ACCELERATOR_LINES = ("GPU available", "TPU available", "HPU available", "LOCAL_RANK")

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("\N{ELECTRIC LIGHT BULB} Tip"):
            return False
        return self.verbose or not message.startswith(self.ACCELERATOR_LINES)


def quiet_lightning(verbose: bool) -> None:
    """Install :class:`LightningNoise` on Lightning's rank-zero loggers (replacing an earlier one),
    and silence the FutureWarning that torch 2.14 raises for every run inside Lightning 2.6's own
    ``_pytree`` (``LeafSpec``), which no setting of ours can avoid."""
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, LightningNoise)]:
            logger.removeFilter(old)
        logger.addFilter(LightningNoise(verbose))


def configure(cfg: DictConfig) -> None:
    """Apply the run-wide settings shared by the entry points: thread count, config printing and
    Lightning's console lines."""
    quiet_lightning(bool(cfg.get("extras", {}).get("verbose")))
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    if cfg.get("extras", {}).get("print_config"):
        from rich.console import Console
        from rich.syntax import Syntax

        Console(stderr=True).print(Syntax(OmegaConf.to_yaml(cfg, resolve=True), "yaml"))


def instantiate_all(group: DictConfig | None) -> list[Any]:
    """A config group of named entries (callbacks, loggers) -> the instantiated objects."""
    return [instantiate(entry) for entry in (group or {}).values() if entry and "_target_" in entry]


USER_ERRORS = (DatasetError, ModelFileError, FineTuneError, TrainingDiverged, FileNotFoundError)


def user_errors(task: Task) -> Task:
    """Report bad input (missing files, bad datasets, bad checkpoints, fine-tuning settings that
    cannot apply) and a diverged training run in one line, exit code 2, also when it was raised
    while Hydra instantiated a config (e.g. a missing lexicon file)."""

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return task(*args, **kwargs)
        except (*USER_ERRORS, InstantiationException) as error:
            cause = error.__cause__ if isinstance(error, InstantiationException) else error
            if not isinstance(cause, USER_ERRORS):
                raise
            print(f"error: {cause}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper  # type: ignore[return-value]

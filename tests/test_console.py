"""A clean console: Lightning's product tips never, its accelerator lines only when verbose, no
deprecation warning from inside Lightning."""

from __future__ import annotations

import logging
import warnings

import lightning as L
import pytest
import torch
from lightning.pytorch.utilities._pytree import _tree_flatten

from ctcocr.cli.common import quiet_lightning


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("verbose", [False, True])
def test_tips_never_and_accelerator_lines_only_when_verbose(tmp_path, verbose):
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    collect, level = Collect(), logger.level
    logger.addHandler(collect)
    logger.setLevel(logging.INFO)
    try:
        quiet_lightning(verbose)
        L.Trainer(accelerator="cpu", default_root_dir=tmp_path, enable_progress_bar=False)
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)
        quiet_lightning(False)
    assert not any("Tip" in message for message in collect.messages)
    assert any(m.startswith("GPU available") for m in collect.messages) == verbose


def test_lightnings_own_pytree_deprecation_is_not_printed():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _tree_flatten(torch.zeros(1))
    assert any("LeafSpec" in str(warning.message) for warning in caught)  # torch still warns
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_lightning(False)
        _tree_flatten(torch.zeros(1))
    assert not any("LeafSpec" in str(warning.message) for warning in caught)

"""Each `loss=` variant trains the default setup end to end (tiny config, in process)."""

from __future__ import annotations

import math

import pytest

from ctcocr.cli.train import train
from tests.conftest import TINY, compose_config
from tests.test_configs import options


@pytest.mark.parametrize("loss", options("loss"))
def test_loss_variant_trains_and_logs_plain_ctc(loss, tmp_path):
    cfg = compose_config("train", [*TINY, f"loss={loss}", "logger=csv", "test=false"], tmp_path)
    metrics = train(cfg)
    for name in ("train/loss", "train/ctc", "val/loss", "val/ctc"):
        assert math.isfinite(metrics[name]), (name, metrics)
    if loss in ("builtin", "custom"):  # plain CTC: the loss is the logged CTC value
        assert metrics["val/loss"] == pytest.approx(metrics["val/ctc"])
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()

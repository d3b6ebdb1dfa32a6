"""Slow tests (`make test-slow`): learning, resuming, and DDP with two CPU processes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY
from tests.test_entrypoints import run

pytestmark = pytest.mark.slow

def logged_steps(run_dir: Path) -> list[int]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def test_training_learns_an_easy_task(tmp_path):
    """Digit strings in the committed fonts, a half-width model, 1000 steps (about 1.5 minutes on
    this project's CPU): the study preset's task with plain CTC must reach 90% word accuracy."""
    run("ctcocr.cli.train", "experiment=loss_study", "study.variant=builtin", "seed=1",
        "extras.print_config=false", f"hydra.run.dir={tmp_path}")
    metrics = json.loads((tmp_path / "val" / "metrics.json").read_text())
    assert metrics["acc"] >= 0.9, metrics
    assert metrics["cer"] <= 0.05, metrics


def test_resume_continues_steps_and_metrics(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    common = [*TINY, "trainer.max_steps=8", "logger=csv", "test=false"]
    run("ctcocr.cli.train", *common, "+callbacks.stop._target_=tests.callbacks.StopAtStep",
        "+callbacks.stop.step=4", f"hydra.run.dir={first}")
    last = first / "checkpoints" / "last.ckpt"
    before = torch.load(last, map_location="cpu", weights_only=False)
    assert before["global_step"] == 4
    run("ctcocr.cli.train", *common, f"ckpt_path={last}", f"hydra.run.dir={second}")
    after = torch.load(second / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert after["global_step"] == 8
    assert after["lr_schedulers"][0]["last_epoch"] == 8
    assert min(logged_steps(second)) >= 4

    def best_score(checkpoint):
        return next(state["best_model_score"] for key, state in checkpoint["callbacks"].items()
                    if key.startswith("ModelCheckpoint") and "val/acc" in key)

    assert best_score(after) >= best_score(before)


def test_ddp_with_two_cpu_processes(tmp_path):
    result = run("ctcocr.cli.train", *TINY, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                 "trainer.sync_batchnorm=false", "trainer.precision=32-true", "logger=csv",
                 f"hydra.run.dir={tmp_path}")
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu",
                            weights_only=False)
    assert checkpoint["global_step"] == 4
    assert "world_size=2" in result.stderr or "distributed_backend=gloo" in result.stderr
    assert json.loads((tmp_path / "test" / "metrics.json").read_text())["samples"] == 32

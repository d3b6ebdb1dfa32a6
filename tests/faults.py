"""Helpers of the fault tests: ctcocr-train in a subprocess, killed or signalled mid-run, and the
comparison of a resumed run with an uninterrupted one."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from tests.conftest import TINY

#: A tiny run over three epochs of six batches: validation (and checkpoints/last.ckpt) every 5
#: steps, so checkpoints fall mid-epoch; every step's loss in csv/metrics.csv.
RUN = [
    *TINY,
    "data.train.size=96",
    "trainer.max_steps=20",
    "trainer.val_check_interval=5",
    "logger=csv",
    "test=false",
    "~callbacks.rich_progress_bar",
    "trainer.enable_progress_bar=false",
    "model.dropout=0.2",  # in-step randomness that must resume too
]
#: Slows every step by 0.3 s, so that a signal or a kill lands while the run trains.
SLOW_STEPS = ["+callbacks.pace._target_=tests.callbacks.Pace", "+callbacks.pace.seconds=0.3"]


def command(run_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "ctcocr.cli.train", *RUN, *overrides, f"hydra.run.dir={run_dir}"]


def train(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    result = subprocess.run(command(run_dir, *overrides), capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def checkpoint_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["global_step"]


def start_and_wait_for_checkpoint(run_dir: Path, *overrides: str,
                                  min_step: int = 5) -> subprocess.Popen:
    """Start a (paced) run and return once its last.ckpt holds at least ``min_step`` steps."""
    process = subprocess.Popen(command(run_dir, *SLOW_STEPS, *overrides), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not (last.is_file() and checkpoint_step(last) >= min_step):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.2)
    return process


def kill_after_checkpoint(run_dir: Path, *overrides: str, delay: float = 1.0) -> int:
    """Run, SIGKILL ``delay`` seconds after the first checkpoint; returns the last.ckpt's step."""
    process = start_and_wait_for_checkpoint(run_dir, *overrides)
    time.sleep(delay)
    assert process.poll() is None, "the run ended before the kill"
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    return checkpoint_step(run_dir / "checkpoints" / "last.ckpt")


def logged(run_dir: Path, name: str = "train/loss") -> dict[int, float]:
    """step -> value of ``name`` in the run's csv/metrics.csv."""
    with open(run_dir / "csv" / "metrics.csv", newline="") as handle:
        return {int(row["step"]): float(row[name]) for row in csv.DictReader(handle) if row[name]}


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu",
                            weights_only=False)
    return checkpoint["state_dict"]


def differences(full: Path, resumed: Path, resumed_from: int) -> tuple[float, float, int]:
    """(largest relative loss difference over the steps after ``resumed_from``, largest weight
    difference, number of compared losses) between an uninterrupted and a resumed run."""
    reference, other = logged(full), logged(resumed)
    steps = [step for step in reference if step >= resumed_from]
    assert steps and set(steps) <= set(other), (sorted(reference), sorted(other))
    loss = max(abs(other[s] - reference[s]) / max(abs(reference[s]), 1e-12) for s in steps)
    a, b = weights(full), weights(resumed)
    assert a.keys() == b.keys()
    weight = max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel())
    return loss, weight, len(steps)


def signal_after_checkpoint(run_dir: Path, signum: signal.Signals,
                            *overrides: str) -> tuple[int, int, str]:
    """Run, send ``signum`` after the first checkpoint; returns (exit code, last.ckpt's step,
    stderr)."""
    process = start_and_wait_for_checkpoint(run_dir, *overrides)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=300)
    return process.returncode, checkpoint_step(run_dir / "checkpoints" / "last.ckpt"), stderr

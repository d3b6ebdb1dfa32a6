"""Fault suite (`make test-slow`): a real ctcocr-train subprocess killed with SIGKILL or stopped by
a preemption signal, then resumed from its last.ckpt, must continue exactly as the uninterrupted
run: every logged loss after the resume point within 1e-4 relative, every weight within 1e-4.

The runs are tiny (tests/faults.py): three epochs of six batches, dropout on, checkpoints
mid-epoch and at an epoch's end depending on when the signal lands.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.faults import (
    differences,
    kill_after_checkpoint,
    signal_after_checkpoint,
    train,
)

pytestmark = pytest.mark.slow

TOLERANCE = 1e-4
BF16 = ["trainer.precision=bf16-mixed", "trainer.max_steps=12", "trainer.val_check_interval=4"]
#: last.ckpt also every second of training (Lightning's time-based ModelCheckpoint, saved at the
#: end of a training batch rather than after validation)
EVERY_SECOND = ["callbacks.time_checkpoint.train_time_interval.minutes=0",
                "+callbacks.time_checkpoint.train_time_interval.seconds=1"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("faults") / "uninterrupted"
    train(run_dir)
    return run_dir


def resume(run_dir: Path, interrupted: Path, *overrides: str) -> Path:
    train(run_dir, *overrides, f"ckpt_path={interrupted / 'checkpoints' / 'last.ckpt'}")
    return run_dir


def assert_exact(full: Path, resumed: Path, step: int) -> None:
    loss, weight, compared = differences(full, resumed, step)
    print(f"resumed at step {step}: max relative loss difference {loss:.3g} over {compared} "
          f"steps, max weight difference {weight:.3g}")
    assert loss <= TOLERANCE and weight <= TOLERANCE


def test_kill_9_and_resume_is_exact(uninterrupted, tmp_path):
    step = kill_after_checkpoint(tmp_path / "killed")
    assert_exact(uninterrupted, resume(tmp_path / "resumed", tmp_path / "killed"), step)


def test_kill_9_with_worker_processes_and_time_checkpoints_is_exact(uninterrupted, tmp_path):
    """Two loader workers prefetching ahead, and last.ckpt from the time-based checkpoint at the
    end of a training batch: the same batches as the uninterrupted run without workers."""
    step = kill_after_checkpoint(tmp_path / "killed", "data.num_workers=2", *EVERY_SECOND)
    resumed = resume(tmp_path / "resumed", tmp_path / "killed", "data.num_workers=2")
    assert_exact(uninterrupted, resumed, step)


def test_kill_9_and_resume_in_bf16_mixed_is_exact(tmp_path):
    train(tmp_path / "uninterrupted", *BF16)
    step = kill_after_checkpoint(tmp_path / "killed", *BF16, delay=0.5)
    resumed = resume(tmp_path / "resumed", tmp_path / "killed", *BF16)
    assert_exact(tmp_path / "uninterrupted", resumed, step)


def test_sigterm_saves_exits_and_resumes_exactly(uninterrupted, tmp_path):
    code, step, stderr = signal_after_checkpoint(tmp_path / "stopped", signal.SIGTERM)
    assert code == 128 + signal.SIGTERM
    assert f"stopped by SIGTERM at step {step}" in stderr
    assert "Traceback" not in stderr
    assert_exact(uninterrupted, resume(tmp_path / "resumed", tmp_path / "stopped"), step)


def test_sigusr1_saves_and_exits(tmp_path):
    code, step, stderr = signal_after_checkpoint(tmp_path / "stopped", signal.SIGUSR1)
    assert code == 128 + signal.SIGUSR1
    assert f"stopped by SIGUSR1 at step {step}" in stderr
    assert "Traceback" not in stderr

"""Fast checks of the resume machinery: the loader's position, per-batch seeding, atomic
checkpoint writes, ``ckpt_path=last``. The kill-and-resume runs are in tests/test_faults.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ctcocr.data.sampler import BucketBatchSampler, EpochRandomSampler, ResumableDataLoader
from ctcocr.training.resume import AtomicCheckpointIO, SeedEachBatch, latest_last_checkpoint

SIZE, BATCH = 100, 8  # 13 batches an epoch, the last one short


def loader(num_workers: int = 0) -> ResumableDataLoader:
    data = list(range(SIZE))
    lengths = [(7 * index) % 23 for index in data]  # bucketing sorts by these
    sampler = BucketBatchSampler(EpochRandomSampler(data, seed=3), BATCH, False, lengths,
                                 chunk_size=32, seed=3)
    return ResumableDataLoader(data, batch_sampler=sampler, num_workers=num_workers)


def epoch_batches(source: ResumableDataLoader, epoch: int) -> list[list[int]]:
    source.batch_sampler.set_epoch(epoch)
    return [batch.tolist() for batch in source]


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("taken", [1, 6])
def test_a_fresh_loader_continues_where_the_state_was_taken(num_workers, taken):
    first = loader(num_workers)
    first.batch_sampler.set_epoch(2)
    iterator = iter(first)
    seen = [next(iterator).tolist() for _ in range(taken)]
    state = first.state_dict()
    assert state == {"epoch": 2, "batches": taken}
    rest = [batch.tolist() for batch in iterator]

    second = loader(num_workers)
    second.load_state_dict(state)
    assert [batch.tolist() for batch in second] == rest
    assert seen + rest == epoch_batches(loader(), 2)
    # the skip applies once: the next pass is a whole epoch again
    assert len(list(second)) == len(second)


def test_a_state_taken_at_the_end_of_an_epoch_resumes_at_the_next():
    first = loader()
    first.batch_sampler.set_epoch(1)
    list(first)
    second = loader()
    second.load_state_dict(first.state_dict())
    assert [batch.tolist() for batch in second] == epoch_batches(loader(), 2)


def test_epochs_differ_and_each_epoch_covers_the_data_once():
    one, two = epoch_batches(loader(), 0), epoch_batches(loader(), 1)
    assert one != two
    assert sorted(i for batch in one for i in batch) == list(range(SIZE))


def fake_trainer(step: int, batch_idx_modulo: int = 1) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, accumulate_grad_batches=batch_idx_modulo,
                           global_rank=0)


def draws() -> tuple[float, float, float]:
    import random

    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_random_draws_depend_on_the_step_alone():
    seeding = SeedEachBatch(seed=5)
    seeding.on_train_batch_start(fake_trainer(7), None, None, 0)
    expected = draws()
    torch.rand(1000), np.random.rand(10)  # whatever ran before the batch
    seeding.on_train_batch_start(fake_trainer(7), None, None, 3)
    assert draws() == expected
    seeding.on_train_batch_start(fake_trainer(8), None, None, 0)
    assert draws() != expected
    restored = SeedEachBatch(seed=None)
    restored.load_state_dict(seeding.state_dict())
    restored.on_train_batch_start(fake_trainer(7), None, None, 0)
    assert draws() == expected


WRITER = """
import sys, torch
from ctcocr.training.resume import AtomicCheckpointIO
io = AtomicCheckpointIO()
for version in range(10**6):
    io.save_checkpoint({"version": version, "weights": torch.full((4_000_000,), version)}, sys.argv[1])
    print(version, flush=True)
"""


def test_a_kill_during_a_checkpoint_write_leaves_a_whole_checkpoint(tmp_path):
    """SIGKILL a process that keeps rewriting a 16 MB checkpoint (a write takes tens of
    milliseconds): the file is one complete version."""
    path = tmp_path / "last.ckpt"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                               text=True)
    while int(process.stdout.readline()) < 2:  # written twice: the third write is under way
        pass
    time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    checkpoint = torch.load(path, weights_only=False)
    assert checkpoint["version"] >= 2
    assert torch.equal(checkpoint["weights"], torch.full((4_000_000,), checkpoint["version"]))


def test_atomic_writes_replace_the_file(tmp_path):
    path = tmp_path / "sub" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, path)
    AtomicCheckpointIO().save_checkpoint({"step": 2}, path)
    assert torch.load(path, weights_only=False) == {"step": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


def test_ckpt_path_last_is_the_newest_runs_last_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run under"):
        latest_last_checkpoint(tmp_path)
    for number, run in enumerate(["b", "a", "c"]):
        path = tmp_path / run / "checkpoints" / "last.ckpt"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
        os.utime(path, (1000 + number, 1000 + number))
    assert latest_last_checkpoint(tmp_path) == tmp_path / "c" / "checkpoints" / "last.ckpt"

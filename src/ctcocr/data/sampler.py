"""Width bucketing: batches of lines of similar length, to cut the padding in each batch; and a
data loader that resumes mid-epoch at the batch where a checkpoint left it.

Image widths of synthetic lines are unknown until rendered, so the label length stands in for the
width (for a fixed height the width grows roughly linearly with the number of characters).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence, Sized
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler


class EpochRandomSampler(RandomSampler):
    """A random permutation that depends only on ``seed + epoch`` (call :meth:`set_epoch`).

    A :class:`~torch.utils.data.RandomSampler`, so Lightning knows the loader shuffles and, under
    DDP with ``use_distributed_sampler=True``, swaps it for a shuffling ``DistributedSampler``.
    """

    def __init__(self, data_source: Sized, seed: int = 0):
        super().__init__(data_source)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


class BucketBatchSampler(BatchSampler):
    """Indices from ``sampler`` in chunks of about ``chunk_size``, sorted by ``lengths``, batched.

    Chunks are rounded up to whole batches, so only the last batch of the epoch can be short. With
    ``shuffle`` the batches of a chunk come out in a random order seeded by ``seed`` and the inner
    sampler's ``epoch``; without it they come out shortest first. Deterministic for a given
    sampler order. Lightning can inject a ``DistributedSampler`` through the ``sampler`` argument.
    :meth:`resume_at` makes the next pass start after its first ``n`` batches, without loading them.

    Args:
        sampler: yields dataset indices (random for training, sequential for evaluation).
        lengths: length proxy (label length) of every dataset index: ``len(dataset)`` entries.
    """

    def __init__(
        self,
        sampler: Sampler[int],
        batch_size: int,
        drop_last: bool,
        lengths: Sequence[int],
        chunk_size: int = 512,
        shuffle: bool = True,
        seed: int = 0,
    ):
        super().__init__(sampler, batch_size, drop_last)
        self.lengths = lengths
        self.chunk_size = batch_size * max(1, math.ceil(chunk_size / batch_size))
        self.shuffle = shuffle
        self.seed = seed
        self.skip = 0

    def resume_at(self, batches: int) -> None:
        """Leave out the first ``batches`` batches of the next pass (once)."""
        self.skip = batches

    @property
    def epoch(self) -> int:
        """The inner sampler's epoch (0 for a sampler without one)."""
        return getattr(self.sampler, "epoch", 0)

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to the inner sampler (Lightning calls the inner sampler's directly)."""
        set_epoch = getattr(self.sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        for number, batch in enumerate(self._all_batches()):
            if number >= skip:
                yield batch

    def _all_batches(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        chunk: list[int] = []
        for index in self.sampler:
            chunk.append(index)
            if len(chunk) == self.chunk_size:
                yield from self._batches(chunk, generator)
                chunk = []
        if chunk:
            yield from self._batches(chunk, generator)

    def _batches(self, chunk: list[int], generator: torch.Generator) -> Iterator[list[int]]:
        chunk.sort(key=self.lengths.__getitem__)
        size = self.batch_size
        batches = [chunk[start : start + size] for start in range(0, len(chunk), size)]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        order = range(len(batches))
        if self.shuffle:
            order = torch.randperm(len(batches), generator=generator).tolist()
        for position in order:
            yield batches[position]


class ResumableDataLoader(DataLoader):
    """A DataLoader over a :class:`BucketBatchSampler` whose ``state_dict`` is its position: the
    epoch and the number of batches handed out in the current pass.

    Lightning's fit loop stores the state of such a (stateful) training loader in every checkpoint
    and loads it into the fresh loader before iterating on resume, so a resumed run starts at the
    batch after the checkpoint's, in the same order, with or without worker processes (the batch
    sampler runs in the main process; batches prefetched by workers are not counted).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.batch_sampler, BucketBatchSampler):
            raise TypeError("ResumableDataLoader needs a BucketBatchSampler as batch_sampler")
        self.batches_taken = 0

    def __iter__(self) -> Iterator[Any]:
        self.batches_taken = self.batch_sampler.skip
        for batch in super().__iter__():
            self.batches_taken += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.batch_sampler.epoch, "batches": self.batches_taken}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Position the next pass; a finished epoch resumes at the start of the next one."""
        epoch, batches = state_dict["epoch"], state_dict["batches"]
        if batches >= len(self):
            epoch, batches = epoch + 1, 0
        self.batch_sampler.set_epoch(epoch)
        self.batch_sampler.resume_at(batches)

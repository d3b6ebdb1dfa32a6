"""Width bucketing: batches of lines of similar length, to cut the padding in each batch.

Image widths of synthetic lines are unknown until rendered, so the label length stands in for the
width (for a fixed height the width grows roughly linearly with the number of characters).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence, Sized

import torch
from torch.utils.data import BatchSampler, RandomSampler, Sampler


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

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to the inner sampler (Lightning calls the inner sampler's directly)."""
        set_epoch = getattr(self.sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + getattr(self.sampler, "epoch", 0))
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

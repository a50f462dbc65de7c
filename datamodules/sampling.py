"""The train sampler: an epoch order and augmentation that depend only on (seed, epoch, image).

A resumed run must see the same batches, augmented the same way, as the run it continues.
`ResumableSampler` shuffles by (seed, epoch) as `DistributedSampler` does (one shard per rank,
so Lightning keeps it under DDP), can start an epoch part-way (the batches a resumed run has
already trained on), and hands each example a seed for its random augmentation
(`augmentation_seed`), so the augmentation does not depend on loader workers, prefetching or
where a run was resumed.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Dataset, DistributedSampler

_MIX = 0x9E3779B97F4A7C15  # odd 64-bit constant (golden ratio): spreads (seed, epoch, index) apart


def augmentation_seed(seed: int, epoch: int, index: int) -> int:
    """A distinct 63-bit seed for each (seed, epoch, index)."""
    value = seed & (2**64 - 1)
    for part in (epoch, index):
        value = ((value ^ part) * _MIX + part) % 2**64
    return value >> 1


class ResumableSampler(DistributedSampler):
    """Yields `(index, augmentation seed)` keys of this rank's shard of a (seed, epoch) permutation.

    `start_at(epoch, batches, batch_size)` makes the next epoch begin after the given batches;
    Lightning's `set_epoch` moves it on at every later epoch.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.skip = 0

    def start_at(self, epoch: int, batches: int, batch_size: int) -> None:
        self.set_epoch(epoch)
        self.skip = batches * batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())
        skip, self.skip = self.skip, 0  # only the epoch being resumed starts part-way
        return iter([(i, augmentation_seed(self.seed, self.epoch, i)) for i in indices[skip:]])

"""The train order and augmentation depend on (seed, epoch, image) only: a resumed run replays them."""

from __future__ import annotations

import torch

from datamodules import DigitsDataModule
from datamodules.sampling import ResumableSampler


def keys(sampler: ResumableSampler) -> list[tuple[int, int]]:
    return list(iter(sampler))


def test_an_epoch_order_depends_on_seed_and_epoch_and_a_resumed_epoch_is_its_tail():
    dataset = list(range(50))
    a, b = ResumableSampler(dataset, seed=3), ResumableSampler(dataset, seed=3)
    a.set_epoch(2)
    b.start_at(epoch=2, batches=3, batch_size=8)
    assert keys(b) == keys(a)[24:]
    assert keys(b) == keys(a)  # only the resumed epoch starts part-way
    a.set_epoch(3)
    assert keys(a) != keys(b) and sorted(i for i, _ in keys(a)) == dataset
    assert keys(ResumableSampler(dataset, seed=4)) != keys(ResumableSampler(dataset, seed=3))
    seeds = [seed for _, seed in keys(a)]
    assert len(set(seeds)) == len(seeds)


def test_two_ranks_share_an_epoch_without_overlap():
    dataset = list(range(51))
    shards = [[i for i, _ in ResumableSampler(dataset, num_replicas=2, rank=rank, seed=0)] for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 26  # padded to equal length, as DistributedSampler does
    assert set(shards[0]) | set(shards[1]) == set(dataset)


def test_augmentation_is_the_same_whatever_the_workers_and_leaves_the_global_random_state_alone():
    data = DigitsDataModule(image_size=16, batch_size=32, num_workers=0)
    data.setup()
    first = next(iter(data.train_dataloader()))[0]
    state = torch.get_rng_state()
    again = next(iter(data.train_dataloader()))[0]
    assert torch.equal(torch.get_rng_state(), state)  # loading a batch drew nothing from the global generator
    assert torch.equal(first, again)
    data.num_workers = 2
    with_workers = next(iter(data.train_dataloader()))[0]
    assert torch.equal(first, with_workers)
    train = data.datasets["train"]
    assert torch.equal(train[(5, 1)][0], train[(5, 1)][0])
    assert not torch.equal(train[(5, 1)][0], train[(5, 2)][0])  # the seed drives a real augmentation

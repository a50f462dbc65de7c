"""What every dataset shares: the study's splits, transforms and loaders.

A dataset subclass says only how to index its files (`load_index`) and how to read one
image (`load_image`); splits, the 1,000-image test cut, augmentation and loaders live here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from lightning import LightningDataModule
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from datamodules.sampling import ResumableSampler
from datamodules.splits import cut_test, split_all, split_trainval
from modules.registry import ConfigError

SPLITS = ("train", "val", "test")


def global_seed() -> int:
    """The run's seed (`seed_everything`, which sets PL_GLOBAL_SEED), 0 when none was set."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


@dataclass
class DatasetIndex:
    """Items (paths, or keys the subclass understands) and integer labels, per official split.

    `splits` holds either {"all"} (the study splits it 80/20 then 85/15), {"trainval", "test"}
    (trainval is split 85/15), or {"train", "val", "test"} (official, used as they are).
    """

    class_names: list[str]
    items: list[Hashable]
    labels: np.ndarray
    splits: dict[str, np.ndarray] = field(default_factory=dict)

    def resolve(self) -> dict[str, np.ndarray]:
        """Positions of each of train / val / test under the study's rules, test cut to 1,000."""
        given = set(self.splits)
        if given == {"all"}:
            splits = split_all(self.labels[self.splits["all"]])
            splits = {name: self.splits["all"][positions] for name, positions in splits.items()}
        elif given == {"trainval", "test"}:
            train, val = split_trainval(self.splits["trainval"], self.labels)
            splits = {"train": train, "val": val, "test": self.splits["test"]}
        elif given == set(SPLITS):
            splits = dict(self.splits)
        else:
            raise ValueError(
                f"a dataset index has splits {sorted(given)}; expected all, trainval+test or train+val+test"
            )
        splits["test"] = cut_test(splits["test"], self.labels)
        return splits


class IndexedImages(Dataset):
    def __init__(
        self,
        load: Callable[[Hashable], torch.Tensor],
        items: Sequence[Hashable],
        labels: np.ndarray,
        transform: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        self.load, self.items, self.labels, self.transform = load, items, labels, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        """`key`: an index, or (index, seed) from `ResumableSampler`: the random augmentation then
        draws from that seed alone (the caller's random state is left as it was)."""
        i, seed = key if isinstance(key, tuple) else (key, None)
        image, label = self.load(self.items[i]), int(self.labels[i])
        if seed is None:
            return self.transform(image), label
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.transform(image), label


class ImageClassificationDataModule(LightningDataModule):
    """Batches of [0, 1] float images (3 x image_size x image_size) and integer labels.

    Args:
        root: the dataset's folder.
        image_size: images are resized to image_size x image_size (the study: 224).
        batch_size: per-device training batch; `eval_batch_size` for val/test (default: the same).
        num_workers: loader processes per device.
        augment: the study's training augmentation (flip, color jitter 0.25, rotation 2 degrees).
    """

    dataset_name: ClassVar[str] = ""

    def __init__(
        self,
        root: str | None = None,
        image_size: int = 224,
        batch_size: int | None = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 4,
        augment: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.root, self.image_size, self.batch_size = root, image_size, batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers, self.augment = num_workers, augment
        self._index: DatasetIndex | None = None
        self.datasets: dict[str, IndexedImages] = {}
        self._resume: dict[str, int] | None = None

    # -- what a dataset subclass provides ------------------------------------------------------
    def load_index(self) -> DatasetIndex:
        raise NotImplementedError

    def load_image(self, item: Hashable) -> torch.Tensor:
        """One image as a uint8 tensor, 3 x H x W."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------------
    @property
    def index(self) -> DatasetIndex:
        if self._index is None:
            self._index = self.load_index()
        return self._index

    @property
    def num_classes(self) -> int:
        return len(self.index.class_names)

    @property
    def class_names(self) -> list[str]:
        return self.index.class_names

    def transform(self, train: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        steps: list[Any] = [v2.Resize((self.image_size, self.image_size), antialias=True)]
        if train and self.augment:
            steps += [v2.RandomHorizontalFlip(), v2.ColorJitter(0.25, 0.25, 0.25), v2.RandomRotation(2)]
        steps.append(v2.ToDtype(torch.float32, scale=True))
        return v2.Compose(steps)

    def split_positions(self) -> dict[str, np.ndarray]:
        return self.index.resolve()

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        index = self.index
        for name, positions in self.split_positions().items():
            items = [index.items[p] for p in positions]
            self.datasets[name] = IndexedImages(
                self.load_image, items, index.labels[positions], self.transform(name == "train")
            )

    def _loader(self, split: str) -> DataLoader:
        if (
            self.batch_size is None
        ):  # `batch_size: null` = the backbone's default, resolved by the CLI for study backbones
            raise ConfigError(
                "data batch_size is not set: give --data.batch_size N (null means the backbone's default, "
                "known only for the study's backbones)"
            )
        self.setup()
        seed = global_seed()
        sampler = self._train_sampler(seed) if split == "train" else None
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size if split == "train" else self.eval_batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            drop_last=False,
            # the loader's own seed draw leaves the global random state alone (a resumed run replays it)
            generator=torch.Generator().manual_seed(seed),
        )

    def _train_sampler(self, seed: int) -> ResumableSampler:
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = ResumableSampler(self.datasets["train"], num_replicas=world, rank=rank, seed=seed)
        resume, self._resume = self._resume, None
        if resume is not None:
            if (resume["seed"], resume["world_size"]) == (seed, world):
                sampler.start_at(resume["epoch"], resume["batches"], self.batch_size)
            else:
                sampler.set_epoch(resume["epoch"])
                rank_zero_warn(
                    f"the checkpoint's train order was drawn with seed {resume['seed']} on {resume['world_size']} "
                    f"device(s), this run has seed {seed} on {world}: the interrupted epoch starts over"
                )
        return sampler

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: where the train sampler stands (epoch, batches of it trained on)."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn != TrainerFn.FITTING:
            return {}
        loop = trainer.fit_loop
        batches = loop.epoch_loop.batch_progress.current.processed
        if batches >= trainer.num_training_batches:  # the epoch is over: the next one starts at its beginning
            batches = 0
        return {
            "train_sampler": {
                "epoch": loop.epoch_progress.current.processed,
                "batches": batches,
                "seed": global_seed(),
                "world_size": trainer.world_size,
            }
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._resume = state.get("train_sampler")

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

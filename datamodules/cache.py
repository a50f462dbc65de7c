"""A preprocessed image cache: every image decoded and resized once, stored as one uint8 array.

`<name>.npy` holds N x 3 x S x S uint8 (memory-mapped when read, so every loader worker shares
the page cache); `<name>.json` beside it records the images that could not be read. Both are
written under temporary names and renamed, the record last, so a crashed build leaves no
cache that looks complete. Resizing here is the same antialiased resize the evaluation
transform does, so the cache changes speed, not pixels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as F

from modules.runs import write_text_atomic


class _Resized(Dataset):
    def __init__(self, items: Sequence[Hashable], read: Callable[[Hashable], torch.Tensor], size: int) -> None:
        self.items, self.read, self.size = items, read, size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            image = self.read(self.items[i])
        except Exception as error:  # noqa: BLE001 - recorded, and reported by the DataModule
            return i, None, str(error)
        return i, F.resize(image, [self.size, self.size], antialias=True), None


class ImageCache:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.bad: dict[int, str] = {int(k): v for k, v in json.loads(self.record(self.path).read_text())["bad"].items()}
        self._array: np.ndarray | None = None

    @staticmethod
    def record(path: Path) -> Path:
        return path.with_suffix(".json")

    @classmethod
    def exists(cls, path: Path) -> bool:
        return path.exists() and cls.record(path).exists()

    def __getstate__(self) -> dict:  # loader workers open their own memory map
        return {**self.__dict__, "_array": None}

    def __len__(self) -> int:
        return len(self.array)

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(np.array(self.array[i]))

    @classmethod
    def build(
        cls,
        path: Path,
        items: Sequence[Hashable],
        read: Callable[[Hashable], torch.Tensor],
        size: int,
        num_workers: int = 0,
    ) -> ImageCache:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        bad: dict[int, str] = {}
        try:
            array = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=(len(items), 3, size, size))
            loader = DataLoader(_Resized(items, read, size), batch_size=None, num_workers=num_workers)
            with Progress(transient=True) as progress:
                task = progress.add_task(f"caching {len(items)} images at {size}px", total=len(items))
                for i, image, error in loader:
                    if image is None:
                        bad[i] = error
                    else:
                        array[i] = image.numpy()
                    progress.advance(task)
            array.flush()
            del array
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        write_text_atomic(cls.record(path), json.dumps({"count": len(items), "size": size, "bad": bad}))
        return cls(path)

"""FileImageDataModule: what the study's on-disk datasets share: locating the layout, download,
image checks, the cache.

A dataset subclass says where its layout starts (`layout_markers`), which official archives
exist (`resources`), and how to index the located folder (`read_index`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from datamodules.base import DatasetIndex, ImageClassificationDataModule
from datamodules.cache import ImageCache
from datamodules.download import Resource, fetch_resources
from datamodules.files import BadImageError, DatasetFileError, check_image, fingerprint, locate, read_image
from modules.registry import ConfigError
from modules.runs import write_text_atomic

log = logging.getLogger(__name__)


class FileImageDataModule(ImageClassificationDataModule):
    """A dataset read from its official files under `root`.

    Args:
        root: the folder that holds (or will hold) the dataset, in its official layout; the layout
            may also sit a few folders deeper (the archive's own top folder, say).
        download: `prepare_data` downloads and extracts the official archives when `root` lacks them.
        checksums: file name -> "md5:<hex>" or "sha256:<hex>", for archives without a built-in checksum.
        verify_images: decode every image once at setup (remembered per file set) so that a corrupt
            file is reported before training, not hours into it.
        on_bad_image: "error" stops with the list of unreadable files; "skip" drops them (after the
            splits are made, so that the other images keep their split) with a logged warning.
        cache: decode and resize every image once into a memory-mapped uint8 file and read that
            afterwards (much faster than decoding JPEGs each epoch).
        cache_dir: where the cache and the verification records go (default: `<root>/.cache`).
    """

    layout_markers: ClassVar[tuple[str, ...]] = ("",)
    layout_help: ClassVar[str] = ""
    resources: ClassVar[tuple[Resource, ...]] = ()
    no_download_help: ClassVar[str] = ""

    def __init__(
        self,
        root: str | None = None,
        image_size: int = 224,
        batch_size: int | None = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 4,
        augment: bool = True,
        download: bool = True,
        checksums: dict[str, str] | None = None,
        verify_images: bool = True,
        on_bad_image: Literal["error", "skip"] = "error",
        cache: bool = False,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__(root, image_size, batch_size, eval_batch_size, num_workers, augment)
        self.download, self.checksums = download, checksums
        self.verify_images, self.on_bad_image = verify_images, on_bad_image
        self.cache, self.cache_dir = cache, cache_dir
        self._image_cache: ImageCache | None = None
        self._position: dict[Hashable, int] = {}
        self._bad: dict[int, str] = {}

    # -- what a dataset subclass provides ------------------------------------------------------
    def read_index(self, folder: Path, marker: str) -> DatasetIndex:
        """The index of the dataset found in `folder` (which holds `marker`)."""
        raise NotImplementedError

    # -- layout -----------------------------------------------------------------------------------
    @property
    def root_path(self) -> Path:
        if not self.root:
            raise ConfigError(f"{self.dataset_name or type(self).__name__}: set the dataset folder (`--data.root DIR`)")
        return Path(self.root).expanduser()

    def find_layout(self) -> tuple[Path, str]:
        root = self.root_path
        if not root.is_dir():
            raise DatasetFileError(f"dataset folder {root} does not exist (expected {self.describe_layout()})")
        found = locate(root, self.layout_markers)
        if found is None:
            raise DatasetFileError(f"no {self.dataset_name} dataset under {root}: expected {self.describe_layout()}")
        return found

    def describe_layout(self) -> str:
        return self.layout_help or " or ".join(self.layout_markers)

    def load_index(self) -> DatasetIndex:
        folder, marker = self.find_layout()
        index = self.read_index(folder, marker)
        if len(index.class_names) == 0 or len(index.items) == 0:
            raise DatasetFileError(f"no images found under {folder} (expected {self.describe_layout()})")
        return index

    def prepare_data(self) -> None:
        """Download what is missing (rank 0 of each node, under Lightning), then build the cache if asked."""
        root = self.root_path
        if not (root.is_dir() and locate(root, self.layout_markers) is not None):
            if not self.resources:
                raise ConfigError(
                    f"no {self.dataset_name} dataset under {root} and no public archive to download. "
                    f"{self.no_download_help}"
                )
            if not self.download:
                raise DatasetFileError(
                    f"no {self.dataset_name} dataset under {root} (expected "
                    f"{self.describe_layout()}); set `download: true` to fetch the official archives"
                )
            log.info("downloading %s into %s", self.dataset_name, root)
            fetch_resources(self.resources, root, self.checksums)
            self.find_layout()  # the archives did hold the layout
        if self.cache:
            self._open_cache()

    # -- images -----------------------------------------------------------------------------------
    def load_image(self, item: Hashable) -> torch.Tensor:
        if self._image_cache is not None:
            return self._image_cache[self._position[item]]
        return read_image(item)

    @property
    def _work_dir(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else self.root_path / ".cache"

    def _key(self) -> str:
        return fingerprint(self.index.items, self.dataset_name, self.image_size)

    def _open_cache(self) -> ImageCache:
        path = self._work_dir / f"{self.dataset_name or 'images'}-{self.image_size}px-{self._key()}.npy"
        if not ImageCache.exists(path):
            ImageCache.build(path, self.index.items, read_image, self.image_size, self.num_workers)
        return ImageCache(path)

    def _verify(self) -> dict[int, str]:
        """Positions of unreadable images -> why; remembered in a small record per file set."""
        record = self._work_dir / f"verified-{self._key()}.json"
        if record.exists():
            return {int(k): v for k, v in json.loads(record.read_text())["bad"].items()}
        items = self.index.items
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            results = list(pool.map(check_image, items, chunksize=64))
        bad = {i: f"{items[i]}: {why}" for i, why in enumerate(results) if why is not None}
        with contextlib.suppress(OSError):  # a read-only dataset folder: verify again next time
            write_text_atomic(record, json.dumps({"count": len(items), "bad": bad}))
        return bad

    def split_positions(self) -> dict[str, np.ndarray]:
        if self.cache:
            self._image_cache = self._open_cache()
            self._position = {item: i for i, item in enumerate(self.index.items)}
            self._bad = self._image_cache.bad
        elif self.verify_images:
            self._bad = self._verify()
        splits = self.index.resolve()
        if self._bad:
            listing = "\n  ".join(self._bad[i] for i in sorted(self._bad)[:20])
            more = f"\n  ... and {len(self._bad) - 20} more" if len(self._bad) > 20 else ""
            if self.on_bad_image == "error":
                raise BadImageError(
                    f"{len(self._bad)} unreadable image(s) in {self.root_path}:\n  {listing}{more}\n"
                    "replace them, or set `on_bad_image: skip` to train without them"
                )
            log.warning("skipping %d unreadable image(s):\n  %s%s", len(self._bad), listing, more)
            bad = np.array(sorted(self._bad))
            splits = {name: positions[~np.isin(positions, bad)] for name, positions in splits.items()}
        return splits

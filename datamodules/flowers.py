"""Oxford Flowers-102 with its official train / val / test split.

`jpg/image_NNNNN.jpg`, `imagelabels.mat` (`labels`: 1..102 per image, in image order) and
`setid.mat` (`trnid`, `valid`, `tstid`: 1-based image numbers). The official files name no
classes, so class k (index k - 1) is called "k".
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from datamodules.base import DatasetIndex
from datamodules.download import Resource
from datamodules.files import DatasetFileError, load_mat
from datamodules.from_files import FileImageDataModule
from datamodules.registry import register_dataset

_URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
SET_KEYS = {"train": "trnid", "val": "valid", "test": "tstid"}


@register_dataset("flowers-102")
class FlowersDataModule(FileImageDataModule):
    layout_markers: ClassVar[tuple[str, ...]] = ("imagelabels.mat",)
    layout_help: ClassVar[str] = "jpg/image_NNNNN.jpg, imagelabels.mat and setid.mat in one folder"
    resources: ClassVar[tuple[Resource, ...]] = (  # md5s as pinned by torchvision's Flowers102
        Resource(_URL + "102flowers.tgz", "102flowers.tgz", "md5:52808999861908f626f3c1f4e79d11fa"),
        Resource(_URL + "imagelabels.mat", "imagelabels.mat", "md5:e0620be6f572b9609742df49c70aed4d", extract=False),
        Resource(_URL + "setid.mat", "setid.mat", "md5:a5357ecc9cb78c4bef273ce3793fc85c", extract=False),
    )

    def read_index(self, folder: Path, marker: str) -> DatasetIndex:
        labels_path, setid_path = folder / "imagelabels.mat", folder / "setid.mat"
        labels = np.atleast_1d(load_mat(labels_path, "label file", "labels")["labels"]).astype(np.int64) - 1
        setid = load_mat(setid_path, "split file", *SET_KEYS.values())
        splits = {}
        for split, key in SET_KEYS.items():
            numbers = np.atleast_1d(setid[key]).astype(np.int64)
            if numbers.min() < 1 or numbers.max() > len(labels):
                raise DatasetFileError(
                    f"{setid_path}: {key} holds image numbers outside 1..{len(labels)} "
                    f"(the number of labels in {labels_path})"
                )
            splits[split] = numbers - 1
        items = [folder / "jpg" / f"image_{n:05d}.jpg" for n in range(1, len(labels) + 1)]
        class_names = [str(k) for k in range(1, int(labels.max()) + 2)]
        return DatasetIndex(class_names, items, labels, splits)

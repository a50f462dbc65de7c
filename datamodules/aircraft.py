"""FGVC-Aircraft 2013b, variant level (100 classes), with its official train / val / test split.

`fgvc-aircraft-2013b/data/variants.txt` lists the classes in order (class index = line order);
`data/images_variant_{train,val,test}.txt` hold lines `<image id> <variant name>`; images are
`data/images/<image id>.jpg`.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from datamodules.base import SPLITS, DatasetIndex
from datamodules.download import Resource
from datamodules.files import DatasetFileError, read_lines
from datamodules.from_files import FileImageDataModule
from datamodules.registry import register_dataset


@register_dataset("fgvc-aircraft-2013b")
class AircraftDataModule(FileImageDataModule):
    layout_markers: ClassVar[tuple[str, ...]] = ("data/variants.txt",)
    layout_help: ClassVar[str] = (
        "fgvc-aircraft-2013b/data/{variants.txt, images_variant_{train,val,test}.txt, images/<id>.jpg}"
    )
    resources: ClassVar[tuple[Resource, ...]] = (
        # no checksum is published (torchvision pins none either); give one with `checksums`
        Resource(
            "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",
            "fgvc-aircraft-2013b.tar.gz",
        ),
    )

    def read_index(self, folder: Path, marker: str) -> DatasetIndex:
        data = folder / "data"
        class_names = read_lines(data / "variants.txt", "class list")
        label_of = {name: i for i, name in enumerate(class_names)}
        items, labels, splits = [], [], {}
        for split in SPLITS:
            path = data / f"images_variant_{split}.txt"
            start = len(items)
            for number, line in enumerate(read_lines(path, f"{split} split file"), 1):
                image_id, _, variant = line.partition(" ")
                if variant not in label_of:
                    raise DatasetFileError(
                        f"{path}, line {number}: variant {variant!r} is not in {data / 'variants.txt'}"
                    )
                items.append(data / "images" / f"{image_id}.jpg")
                labels.append(label_of[variant])
            splits[split] = np.arange(start, len(items))
        return DatasetIndex(class_names, items, np.array(labels, dtype=np.int64), splits)

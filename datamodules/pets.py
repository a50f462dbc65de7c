"""Oxford-IIIT Pet (37 breeds): official trainval split 85/15 into train / val; official test.

`annotations/{trainval,test}.txt` hold lines `<image> <class id 1..37> <species> <breed id>`;
images are `images/<image>.jpg`. Class k's name is the breed in its image names
(`Abyssinian_12` -> `Abyssinian`).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from datamodules.base import DatasetIndex
from datamodules.download import Resource
from datamodules.files import DatasetFileError, read_lines
from datamodules.from_files import FileImageDataModule
from datamodules.registry import register_dataset

_URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/data/"


@register_dataset("oxford-iiit-pet")
class PetsDataModule(FileImageDataModule):
    layout_markers: ClassVar[tuple[str, ...]] = ("annotations/trainval.txt",)
    layout_help: ClassVar[str] = "images/<Breed>_<n>.jpg and annotations/{trainval,test}.txt"
    resources: ClassVar[tuple[Resource, ...]] = (  # md5s as pinned by torchvision's OxfordIIITPet
        Resource(_URL + "images.tar.gz", "images.tar.gz", "md5:5c4f3ee8e5d25df40f4fd59a7f44e54c"),
        Resource(_URL + "annotations.tar.gz", "annotations.tar.gz", "md5:95a8c909bbe2e81eed6a22bccdf3f68f"),
    )

    def read_index(self, folder: Path, marker: str) -> DatasetIndex:
        items, labels, splits, names = [], [], {}, {}
        for split in ("trainval", "test"):
            path = folder / "annotations" / f"{split}.txt"
            start = len(items)
            for number, line in enumerate(read_lines(path, f"{split} split file"), 1):
                fields = line.split()
                if len(fields) != 4 or not fields[1].isdigit():
                    raise DatasetFileError(
                        f"{path}, line {number}: expected '<image> <class id> <species> <breed id>', got {line!r}"
                    )
                image, class_id = fields[0], int(fields[1])
                breed = image.rsplit("_", 1)[0]
                if names.setdefault(class_id, breed) != breed:
                    raise DatasetFileError(
                        f"{path}, line {number}: class {class_id} is {names[class_id]!r} elsewhere, {breed!r} here"
                    )
                items.append(folder / "images" / f"{image}.jpg")
                labels.append(class_id - 1)
            splits[split] = np.arange(start, len(items))
        if sorted(names) != list(range(1, len(names) + 1)):
            raise DatasetFileError(f"{folder / 'annotations'}: class ids {sorted(names)} are not 1..{len(names)}")
        return DatasetIndex([names[k] for k in sorted(names)], items, np.array(labels, dtype=np.int64), splits)

"""A user's own images: `<root>/<split>/<class>/*` or one folder of class folders.

With `train/`, `val/`, `test/` folders the splits are used as given; with `train/` and `test/`
only, train is split 85/15 into train/val; with class folders directly under `root`, the study's
80/20 then 85/15 rule applies. Class index = sorted class folder names.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from datamodules.base import DatasetIndex
from datamodules.files import DatasetFileError, image_files
from datamodules.from_files import FileImageDataModule
from datamodules.registry import register_dataset


def class_folders(folder: Path, excluded: tuple[str, ...] = ()) -> dict[str, list[Path]]:
    """Class name -> its sorted image files, for each class folder in `folder`; an empty one is an error."""
    classes = {}
    for child in sorted(folder.iterdir()):
        if not child.is_dir() or child.name.startswith(".") or child.name in excluded:
            continue
        files = image_files(child)
        if not files:
            raise DatasetFileError(f"class folder {child} holds no images (expected *.jpg, *.png, *.tif, ...)")
        classes[child.name] = files
    if not classes:
        raise DatasetFileError(f"no class folders in {folder}")
    return classes


def index_class_folders(split_folders: dict[str, Path], excluded: tuple[str, ...] = ()) -> DatasetIndex:
    """One index over `split name -> folder of class folders` (split "all" for an unsplit dataset)."""
    per_split = {split: class_folders(folder, excluded) for split, folder in split_folders.items()}
    class_names = sorted({name for classes in per_split.values() for name in classes})
    label_of = {name: i for i, name in enumerate(class_names)}
    items, labels, splits = [], [], {}
    for split, classes in per_split.items():
        start = len(items)
        for name, files in classes.items():
            items += files
            labels += [label_of[name]] * len(files)
        splits[split] = np.arange(start, len(items))
    return DatasetIndex(class_names, items, np.array(labels, dtype=np.int64), splits)


@register_dataset("image-folder")
class ImageFolderDataModule(FileImageDataModule):
    layout_help: ClassVar[str] = (
        "<root>/{train,val,test}/<class>/*.jpg, <root>/{train,test}/<class>/*.jpg or <root>/<class>/*.jpg"
    )
    excluded_classes: ClassVar[tuple[str, ...]] = ()
    split_layout: ClassVar[bool] = True  # look for train/val/test folders first

    def read_index(self, folder: Path, marker: str) -> DatasetIndex:
        folder = folder / marker
        if self.split_layout and (folder / "train").is_dir() and (folder / "test").is_dir():
            names = ("train", "val", "test") if (folder / "val").is_dir() else ("train", "test")
            index = index_class_folders({name: folder / name for name in names}, self.excluded_classes)
            if "val" not in names:
                index.splits["trainval"] = index.splits.pop("train")
            return index
        return index_class_folders({"all": folder}, self.excluded_classes)

"""Stanford Cars (196 classes): official train split 85/15 into train / val; official test.

Two layouts are read (class index = official class id - 1 in both):

- the original devkit: `cars_train/*.jpg`, `cars_test/*.jpg`, `devkit/cars_meta.mat`
  (`class_names`), `devkit/cars_train_annos.mat` and `cars_test_annos_withlabels.mat`
  (`annotations`: bbox_x1..bbox_y2, `class` 1..196, `fname`), the last one in the folder or
  in `devkit/`; image folders may be nested once (`cars_train/cars_train/`), as on Kaggle;
- the Kaggle "stanford-car-dataset-by-classes-folder" mirror: `names.csv` (one class name a
  line, in class-id order), `anno_train.csv` and `anno_test.csv` (`fname,x1,y1,x2,y2,class`),
  and the images in `car_data/car_data/{train,test}/<class name>/<fname>`.

There is no public archive any more: `prepare_data` says where to get the files.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import ClassVar

import numpy as np

from datamodules.base import DatasetIndex
from datamodules.files import DatasetFileError, image_files, load_mat, require
from datamodules.from_files import FileImageDataModule
from datamodules.registry import register_dataset

DEVKIT, KAGGLE = "devkit/cars_meta.mat", "names.csv"


def _nested(folder: Path) -> Path:
    """`cars_train/cars_train` where a mirror nests the folder in itself."""
    inner = folder / folder.name
    return inner if inner.is_dir() else folder


@register_dataset("stanford_cars")
class CarsDataModule(FileImageDataModule):
    layout_markers: ClassVar[tuple[str, ...]] = (DEVKIT, KAGGLE)
    layout_help: ClassVar[str] = (
        "either the original devkit layout (cars_train/, cars_test/, devkit/cars_meta.mat, "
        "devkit/cars_train_annos.mat, cars_test_annos_withlabels.mat) or the Kaggle "
        "'stanford-car-dataset-by-classes-folder' layout (names.csv, anno_train.csv, anno_test.csv, "
        "car_data/car_data/{train,test}/<class>/*.jpg)"
    )
    no_download_help: ClassVar[str] = (
        "Stanford Cars is no longer downloadable from its publisher (ai.stanford.edu). Get the original files "
        "(cars_train.tgz, cars_test.tgz, car_devkit.tgz and cars_test_annos_withlabels.mat; mirrored on Kaggle as "
        "'jessicali9530/stanford-cars-dataset' and elsewhere) or the Kaggle 'jutrera/stanford-car-dataset-by-classes-"
        "folder' copy, and put them under the root as " + layout_help.split("either ", 1)[1] + "."
    )

    def read_index(self, folder: Path, marker: str) -> DatasetIndex:
        return self._read_devkit(folder) if marker == DEVKIT else self._read_kaggle(folder)

    def _read_devkit(self, folder: Path) -> DatasetIndex:
        meta = folder / DEVKIT
        class_names = [str(name) for name in np.atleast_1d(load_mat(meta, "class list", "class_names")["class_names"])]
        test_annos = next(
            (
                p
                for p in (
                    folder / "cars_test_annos_withlabels.mat",
                    folder / "devkit" / "cars_test_annos_withlabels.mat",
                )
                if p.exists()
            ),
            folder / "cars_test_annos_withlabels.mat",
        )
        items, labels, splits = [], [], {}
        for split, annos, images in (
            ("trainval", folder / "devkit" / "cars_train_annos.mat", folder / "cars_train"),
            ("test", test_annos, folder / "cars_test"),
        ):
            table = np.atleast_1d(load_mat(annos, f"{split} annotation file", "annotations")["annotations"])
            if table.dtype.names is None or not {"fname", "class"} <= set(table.dtype.names):
                raise DatasetFileError(
                    f"{annos}: `annotations` lacks the fields fname and class "
                    "(cars_test_annos.mat has no labels: use cars_test_annos_withlabels.mat)"
                )
            images = _nested(require(images, f"{split} image folder"))
            start = len(items)
            items += [images / str(name) for name in table["fname"]]
            labels += [int(c) - 1 for c in table["class"]]
            splits[split] = np.arange(start, len(items))
        return self._checked(class_names, items, labels, splits, meta)

    def _read_kaggle(self, folder: Path) -> DatasetIndex:
        names_path = folder / KAGGLE
        with open(names_path, newline="", encoding="utf-8") as handle:
            class_names = [row[0].strip() for row in csv.reader(handle) if row]
        images_root = next(
            (c for c in (folder / "car_data" / "car_data", folder / "car_data", folder) if (c / "train").is_dir()),
            folder / "car_data" / "car_data",
        )
        items, labels, splits = [], [], {}
        for split, name in (("trainval", "train"), ("test", "test")):
            split_dir = require(images_root / name, f"{name} image folder")
            where = {
                p.name: p
                for class_dir in sorted(split_dir.iterdir())
                if class_dir.is_dir()
                for p in image_files(class_dir)
            }
            annos = require(folder / f"anno_{name}.csv", f"{name} annotation file")
            start = len(items)
            with open(annos, newline="", encoding="utf-8") as handle:
                for number, row in enumerate(csv.reader(handle), 1):
                    if not row:
                        continue
                    if len(row) != 6 or not row[5].strip().isdigit():
                        raise DatasetFileError(f"{annos}, line {number}: expected 'fname,x1,y1,x2,y2,class', got {row}")
                    if row[0] not in where:
                        raise DatasetFileError(
                            f"{annos}, line {number}: image {row[0]} is in no class folder of {split_dir}"
                        )
                    items.append(where[row[0]])
                    labels.append(int(row[5]) - 1)
            splits[split] = np.arange(start, len(items))
        return self._checked(class_names, items, labels, splits, names_path)

    @staticmethod
    def _checked(
        class_names: list[str], items: list[Path], labels: list[int], splits: dict[str, np.ndarray], class_file: Path
    ) -> DatasetIndex:
        array = np.array(labels, dtype=np.int64)
        if len(array) and (array.min() < 0 or array.max() >= len(class_names)):
            raise DatasetFileError(
                f"class ids run to {array.max() + 1} but {class_file} names {len(class_names)} classes"
            )
        return DatasetIndex(class_names, items, array, splits)

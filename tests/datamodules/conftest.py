"""Tiny copies of the six datasets in their official on-disk layouts (a few small images per class,
the real index / `.mat` annotation formats), plus what each file says: the test's ground truth."""

from __future__ import annotations

import csv
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat


@dataclass
class Layout:
    """`root` to give the DataModule; `splits`: official split -> [(image path, label)] in official order
    ("all" for a dataset without an official split, in sorted class / file order)."""

    root: Path
    class_names: list[str]
    splits: dict[str, list[tuple[Path, int]]] = field(default_factory=dict)


def seed_of(*parts: object) -> int:
    return zlib.crc32(repr(parts).encode())


def write_image(path: Path, seed: int, size: tuple[int, int] = (12, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def class_folder_layout(root: Path, folder: Path, class_names: list[str], per_class: int, ext: str) -> Layout:
    items = []
    for label, name in enumerate(sorted(class_names)):
        for n in range(per_class):
            items.append((write_image(folder / name / f"{name}{n:02d}{ext}", seed_of(name, n)), label))
    return Layout(root, sorted(class_names), {"all": items})


def write_caltech101(root: Path, n_classes: int = 101, per_class: int = 9) -> Layout:
    folder = root / "caltech-101" / "101_ObjectCategories"
    names = ["Faces", "Faces_easy", "Leopards", "Motorbikes"] + [f"class_{k:03d}" for k in range(n_classes - 4)]
    layout = class_folder_layout(root, folder, names[:n_classes], per_class, ".jpg")
    for n in range(3):
        write_image(folder / "BACKGROUND_Google" / f"image_{n + 1:04d}.jpg", n)
    return layout


def write_ucmerced(root: Path, n_classes: int = 21, per_class: int = 10) -> Layout:
    names = [f"landuse{k:02d}" for k in range(n_classes)]
    return class_folder_layout(root, root / "UCMerced_LandUse" / "Images", names, per_class, ".tif")


def write_aircraft(root: Path, n_classes: int = 100, per_split: int = 2) -> Layout:
    data = root / "fgvc-aircraft-2013b" / "data"
    names = [f"Model {k}-{k * 10}" if k % 7 else f"F/A-{k}" for k in range(n_classes)]
    (data / "images").mkdir(parents=True)
    (data / "variants.txt").write_text("\n".join(names) + "\n")
    layout, image_id = Layout(root, names), 1000000
    for split in ("train", "val", "test"):
        layout.splits[split], lines = [], []
        for label in np.random.default_rng(len(split)).permutation(np.repeat(np.arange(n_classes), per_split)):
            image_id += 1
            layout.splits[split].append((write_image(data / "images" / f"{image_id}.jpg", image_id), int(label)))
            lines.append(f"{image_id} {names[label]}")
        (data / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")
    return layout


def write_flowers(root: Path, n_classes: int = 102, per_split: tuple[int, int, int] = (2, 2, 3)) -> Layout:
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(1, n_classes + 1), sum(per_split)))
    for n in range(1, len(labels) + 1):
        write_image(root / "jpg" / f"image_{n:05d}.jpg", n)
    savemat(root / "imagelabels.mat", {"labels": labels[None, :].astype(np.uint8)})
    setid, layout = {}, Layout(root, [str(k) for k in range(1, n_classes + 1)])
    numbers = {k: list(np.flatnonzero(labels == k) + 1) for k in range(1, n_classes + 1)}
    for (split, key), count in zip((("train", "trnid"), ("val", "valid"), ("test", "tstid")), per_split):
        chosen = sorted(n for k in numbers for n in numbers[k][:count])
        for k in numbers:
            numbers[k] = numbers[k][count:]
        setid[key] = np.array(chosen, dtype=np.uint16)[None, :]
        layout.splits[split] = [(root / "jpg" / f"image_{n:05d}.jpg", int(labels[n - 1]) - 1) for n in chosen]
    savemat(root / "setid.mat", setid)
    return layout


def write_pets(root: Path, n_classes: int = 37, per_split: tuple[int, int] = (8, 3)) -> Layout:
    breeds = [f"Breed{k}" if k < 12 else f"dog_breed_{k}" for k in range(n_classes)]  # cats capitalised, as shipped
    layout = Layout(root, breeds)
    (root / "annotations").mkdir(parents=True)
    for split, count in zip(("trainval", "test"), per_split):
        layout.splits[split], lines = [], []
        for n in range(count):
            for k, breed in enumerate(breeds):
                image = f"{breed}_{n + (100 if split == 'test' else 1)}"
                path = write_image(root / "images" / f"{image}.jpg", seed_of(image))
                species = 1 if k < 12 else 2
                lines.append(f"{image} {k + 1} {species} {k + 1 if k < 12 else k - 11}")
                layout.splits[split].append((path, k))
        (root / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return layout


def car_names(n_classes: int) -> list[str]:
    return [
        f"Make{k} Model C/V {2000 + k % 13}" if k % 9 == 0 else f"Make{k} Model {2000 + k % 13}"
        for k in range(n_classes)
    ]


def _annotation_struct(rows: list[tuple[str, int]]) -> np.ndarray:
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    table = np.zeros((1, len(rows)), dtype=[(f, object) for f in fields])
    for i, (fname, cls) in enumerate(rows):
        table[0, i] = (1, 2, 10, 8, cls, fname)
    return table


def _car_rows(n_classes: int, per_class: int, seed: int) -> list[tuple[str, int]]:
    classes = np.random.default_rng(seed).permutation(np.repeat(np.arange(1, n_classes + 1), per_class))
    return [(f"{i + 1:05d}.jpg", int(c)) for i, c in enumerate(classes)]


def write_cars_devkit(root: Path, n_classes: int = 196, per_split: tuple[int, int] = (8, 7)) -> Layout:
    names = car_names(n_classes)
    (root / "devkit").mkdir(parents=True)
    savemat(root / "devkit" / "cars_meta.mat", {"class_names": np.array([names], dtype=object)})
    layout = Layout(root, names)
    for split, folder, annos, count in (
        ("trainval", "cars_train", root / "devkit" / "cars_train_annos.mat", per_split[0]),
        ("test", "cars_test", root / "cars_test_annos_withlabels.mat", per_split[1]),
    ):
        rows = _car_rows(n_classes, count, len(split))
        savemat(annos, {"annotations": _annotation_struct(rows)})
        layout.splits[split] = [(write_image(root / folder / fname, seed_of(split, fname)), c - 1) for fname, c in rows]
    return layout


def write_cars_kaggle(root: Path, n_classes: int = 196, per_split: tuple[int, int] = (8, 7)) -> Layout:
    names = car_names(n_classes)
    root.mkdir(parents=True, exist_ok=True)
    (root / "names.csv").write_text("\n".join(names) + "\n")
    layout = Layout(root, names)
    for split, count in (("train", per_split[0]), ("test", per_split[1])):
        rows = _car_rows(n_classes, count, len(split))
        with open(root / f"anno_{split}.csv", "w", newline="") as handle:
            csv.writer(handle).writerows([fname, 1, 2, 10, 8, c] for fname, c in rows)
        images = root / "car_data" / "car_data" / split
        layout.splits["trainval" if split == "train" else "test"] = [
            (write_image(images / names[c - 1].replace("/", "-") / fname, seed_of(split, fname)), c - 1)
            for fname, c in rows
        ]
    return layout


def write_image_folder(
    root: Path, splits: tuple[str, ...] = ("train", "val", "test"), n_classes: int = 4, per_class: int = 6
) -> Layout:
    """`<root>/<split>/<class>/*.png` (or `<root>/<class>/*.png` when `splits` is ("all",))."""
    names = [f"thing{k}" for k in range(n_classes)]
    layout = Layout(root, names)
    for split in splits:
        folder = root if split == "all" else root / split
        layout.splits[split] = [
            (write_image(folder / name / f"{split}{n}.png", seed_of(split, name, n)), label)
            for label, name in enumerate(names)
            for n in range(per_class)
        ]
    return layout


WRITERS = {
    "caltech101": write_caltech101,
    "fgvc-aircraft-2013b": write_aircraft,
    "flowers-102": write_flowers,
    "oxford-iiit-pet": write_pets,
    "stanford_cars": write_cars_devkit,
    "stanford_cars/kaggle": write_cars_kaggle,
    "uc-merced-land-use-dataset": write_ucmerced,
    "image-folder": write_image_folder,
}


@pytest.fixture(scope="session")
def official_layout(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Layout]:
    """name -> the tiny copy of that dataset, written once per test session (treat it as read-only)."""
    written: dict[str, Layout] = {}

    def get(name: str) -> Layout:
        if name not in written:
            written[name] = WRITERS[name](tmp_path_factory.mktemp(name.replace("/", "-")))
        return written[name]

    return get


@pytest.fixture
def write_layout(tmp_path: Path) -> Callable[..., Layout]:
    """(name, **sizes) -> a fresh, private copy under tmp_path (for tests that damage it)."""

    def write(name: str, **sizes: object) -> Layout:
        return WRITERS[name](tmp_path / name.replace("/", "-"), **sizes)

    return write

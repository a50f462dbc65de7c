"""Each dataset, read from a tiny copy of its official layout, gives the paper's splits."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from datamodules import DATAMODULES
from datamodules.registry import class_path

NAMES = [
    "caltech101",
    "fgvc-aircraft-2013b",
    "flowers-102",
    "oxford-iiit-pet",
    "stanford_cars",
    "stanford_cars/kaggle",
    "uc-merced-land-use-dataset",
    "image-folder",
]
PAPER_NAMES = {
    "caltech101",
    "fgvc-aircraft-2013b",
    "flowers-102",
    "oxford-iiit-pet",
    "stanford_cars",
    "uc-merced-land-use-dataset",
}


def _split(items: list, labels: np.ndarray, test_size: float) -> tuple[list, list]:
    first, second = train_test_split(np.arange(len(items)), test_size=test_size, stratify=labels, random_state=42)
    return [items[i] for i in first], [items[i] for i in second]


def expected_splits(layout) -> dict[str, set]:
    """The paper's rules (BENCHMARK.md, "Datasets"), computed here from the official annotation lists."""
    given = {name: [path for path, _ in rows] for name, rows in layout.splits.items()}
    label_of = {path: label for rows in layout.splits.values() for path, label in rows}
    labels = lambda paths: np.array([label_of[p] for p in paths])  # noqa: E731
    if "all" in given:
        given["trainval"], given["test"] = _split(given["all"], labels(given.pop("all")), 0.2)
    if "trainval" in given:
        given["train"], given["val"] = _split(given["trainval"], labels(given["trainval"]), 0.15)
        del given["trainval"]
    if len(given["test"]) > 1000:
        kept, _ = train_test_split(
            np.arange(len(given["test"])), train_size=1000, stratify=labels(given["test"]), random_state=0
        )
        given["test"] = [given["test"][i] for i in kept]
    return {name: set(paths) for name, paths in given.items()}


@pytest.fixture(scope="module")
def loaded(official_layout):
    cache = {}

    def get(name: str):
        if name not in cache:
            layout = official_layout(name)
            dm = DATAMODULES.get(name.split("/")[0])(root=str(layout.root), image_size=16, num_workers=0)
            dm.setup()
            cache[name] = layout, dm
        return cache[name]

    return get


def test_registry_names_match_the_paper_and_signatures_are_typed():
    assert set(DATAMODULES.names()) >= PAPER_NAMES
    for name in PAPER_NAMES | {"image-folder"}:
        parameters = inspect.signature(DATAMODULES.get(name).__init__).parameters
        for option in ("root", "image_size", "batch_size", "eval_batch_size", "num_workers", "augment", "cache"):
            assert parameters[option].annotation is not inspect.Parameter.empty
        assert class_path(name).startswith("datamodules.")


@pytest.mark.parametrize("name", NAMES)
def test_classes_splits_and_labels(loaded, name):
    layout, dm = loaded(name)
    assert dm.num_classes == len(layout.class_names)
    assert dm.class_names == layout.class_names
    expected = expected_splits(layout)
    got = {split: set(dm.datasets[split].items) for split in ("train", "val", "test")}
    assert {s: len(v) for s, v in got.items()} == {s: len(v) for s, v in expected.items()}
    assert got == expected
    assert not (got["train"] & got["val"] or got["train"] & got["test"] or got["val"] & got["test"])
    label_of = {path: label for rows in layout.splits.values() for path, label in rows}
    for split in ("train", "val", "test"):
        dataset = dm.datasets[split]
        assert [label_of[p] for p in dataset.items] == list(dataset.labels)


@pytest.mark.parametrize("name", ["stanford_cars", "stanford_cars/kaggle"])
def test_large_test_set_is_cut_to_1000_stratified(loaded, name):
    layout, dm = loaded(name)
    full = np.array([label for _, label in layout.splits["test"]])
    cut = np.asarray(dm.datasets["test"].labels)
    assert len(full) > 1000 and len(cut) == 1000
    share = np.bincount(full, minlength=dm.num_classes) * 1000 / len(full)
    counts = np.bincount(cut, minlength=dm.num_classes)
    assert np.all(np.abs(counts - share) <= 1)


def test_both_cars_layouts_give_the_same_classes(loaded):
    assert loaded("stanford_cars")[1].class_names == loaded("stanford_cars/kaggle")[1].class_names


def test_splits_are_identical_across_instances(official_layout):
    root = str(official_layout("caltech101").root)
    first, second = (DATAMODULES.get("caltech101")(root=root, verify_images=False) for _ in range(2))
    for a, b in zip(first.split_positions().values(), second.split_positions().values()):
        np.testing.assert_array_equal(a, b)


def test_loader_batches_are_224_float_images_in_unit_range(official_layout):
    dm = DATAMODULES.get("uc-merced-land-use-dataset")(
        root=str(official_layout("uc-merced-land-use-dataset").root), batch_size=4, num_workers=0
    )
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 3, 224, 224) and images.dtype.is_floating_point
    assert images.min() >= 0 and images.max() <= 1 and labels.shape == (4,)

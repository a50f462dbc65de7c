"""Bad input gives a clear error naming the path; a corrupt image is caught at setup, or skipped
with a logged warning when asked."""

from __future__ import annotations

import logging
import os

import pytest

from datamodules import DATAMODULES
from datamodules.files import BadImageError, DatasetFileError
from modules.registry import ConfigError


def make(name: str, root, **options):
    return DATAMODULES.get(name)(root=str(root), num_workers=0, image_size=16, **options)


def test_missing_root_names_it(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetFileError, match=f"{missing} does not exist"):
        make("flowers-102", missing).setup()


def test_no_root_at_all():
    with pytest.raises(ConfigError, match="--data.root"):
        DATAMODULES.get("caltech101")().setup()


def test_wrong_folder_says_what_was_expected(tmp_path):
    with pytest.raises(
        DatasetFileError, match=r"no oxford-iiit-pet dataset under .*annotations/\{trainval,test\}\.txt"
    ):
        make("oxford-iiit-pet", tmp_path).setup()


@pytest.mark.parametrize(
    ("name", "sizes", "relative"),
    [
        ("flowers-102", {"n_classes": 3}, "setid.mat"),
        ("oxford-iiit-pet", {"n_classes": 3}, "annotations/test.txt"),
        ("fgvc-aircraft-2013b", {"n_classes": 3}, "fgvc-aircraft-2013b/data/images_variant_val.txt"),
        ("stanford_cars", {"n_classes": 3}, "devkit/cars_train_annos.mat"),
        ("stanford_cars/kaggle", {"n_classes": 3}, "anno_test.csv"),
    ],
)
def test_missing_annotation_file_names_it(write_layout, name, sizes, relative):
    layout = write_layout(name, **sizes)
    (layout.root / relative).unlink()
    with pytest.raises(DatasetFileError, match=f"missing .*{layout.root / relative}"):
        make(name.split("/")[0], layout.root).setup()


def test_malformed_annotation_line_names_file_and_line(write_layout):
    layout = write_layout("fgvc-aircraft-2013b", n_classes=3)
    path = layout.root / "fgvc-aircraft-2013b/data/images_variant_test.txt"
    path.write_text(path.read_text() + "1234567 No Such Plane\n")
    with pytest.raises(DatasetFileError, match=f"{path}, line 7: variant 'No Such Plane'"):
        make("fgvc-aircraft-2013b", layout.root).setup()


def test_empty_class_folder_names_it(write_layout):
    layout = write_layout("uc-merced-land-use-dataset", n_classes=3)
    empty = layout.root / "UCMerced_LandUse/Images/zzz_empty"
    empty.mkdir()
    with pytest.raises(DatasetFileError, match=f"class folder {empty} holds no images"):
        make("uc-merced-land-use-dataset", layout.root).setup()


def _damage(layout, how: str):
    path = layout.splits["test"][0][0]
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:60])
    elif how == "not an image":
        path.write_bytes(b"<html>mirror error page</html>")
    else:
        path.chmod(0)
    return path


@pytest.mark.parametrize("how", ["truncated", "not an image", "unreadable"])
def test_corrupt_image_is_reported_at_setup(write_layout, how):
    if how == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads any file")
    layout = write_layout("image-folder")
    path = _damage(layout, how)
    with pytest.raises(BadImageError, match=f"(?s)1 unreadable image.*{path}.*on_bad_image: skip"):
        make("image-folder", layout.root).setup()


def test_corrupt_image_can_be_skipped_with_a_warning(write_layout, caplog):
    layout = write_layout("image-folder")
    path = _damage(layout, "truncated")
    dm = make("image-folder", layout.root, on_bad_image="skip")
    with caplog.at_level(logging.WARNING):
        dm.setup()
    assert str(path) in caplog.text
    assert path not in dm.datasets["test"].items and len(dm.datasets["test"]) == len(layout.splits["test"]) - 1
    assert len(dm.datasets["train"]) == len(layout.splits["train"])


def test_unchecked_corrupt_image_fails_loudly_when_loaded(write_layout):
    layout = write_layout("image-folder")
    path = _damage(layout, "truncated")
    dm = make("image-folder", layout.root, verify_images=False)
    dm.setup()
    with pytest.raises(BadImageError, match=str(path)):
        dm.datasets["test"][dm.datasets["test"].items.index(path)]

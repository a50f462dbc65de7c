"""Caltech-101: `101_ObjectCategories/<class>/image_NNNN.jpg`, without `BACKGROUND_Google`.

No official split: the study's stratified 80/20 then 85/15 rule. Class index = sorted folder names.
The official archive (CaltechDATA record mzrjq-6wc02) is a zip holding `101_ObjectCategories.tar.gz`.
"""

from __future__ import annotations

from typing import ClassVar

from datamodules.download import Resource
from datamodules.image_folder import ImageFolderDataModule
from datamodules.registry import register_dataset


@register_dataset("caltech101")
class Caltech101DataModule(ImageFolderDataModule):
    layout_markers: ClassVar[tuple[str, ...]] = ("101_ObjectCategories",)
    layout_help: ClassVar[str] = "101_ObjectCategories/<class>/image_NNNN.jpg"
    excluded_classes: ClassVar[tuple[str, ...]] = ("BACKGROUND_Google",)
    split_layout: ClassVar[bool] = False
    resources: ClassVar[tuple[Resource, ...]] = (
        # md5 as pinned by torchvision's Caltech101
        Resource(
            "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip?download=1",
            "caltech-101.zip",
            "md5:3138e1922a9193bfa496528edbbc45d0",
            nested=("caltech-101/101_ObjectCategories.tar.gz",),
        ),
    )

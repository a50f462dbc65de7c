"""UC Merced Land Use: `UCMerced_LandUse/Images/<class>/*.tif` (21 classes x 100, 256x256).

No official split: the study's stratified 80/20 then 85/15 rule. Class index = sorted folder names.
"""

from __future__ import annotations

from typing import ClassVar

from datamodules.download import Resource
from datamodules.image_folder import ImageFolderDataModule
from datamodules.registry import register_dataset


@register_dataset("uc-merced-land-use-dataset")
class UCMercedDataModule(ImageFolderDataModule):
    layout_markers: ClassVar[tuple[str, ...]] = ("Images",)
    layout_help: ClassVar[str] = "UCMerced_LandUse/Images/<class>/<class>NN.tif"
    split_layout: ClassVar[bool] = False
    resources: ClassVar[tuple[Resource, ...]] = (
        # no checksum is published for this file; give one with `checksums: {UCMerced_LandUse.zip: sha256:...}`
        Resource("http://weegee.vision.ucmerced.edu/datasets/UCMerced_LandUse.zip", "UCMerced_LandUse.zip"),
    )

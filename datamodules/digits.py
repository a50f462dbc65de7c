"""scikit-learn's bundled handwritten digits: the offline quickstart's real dataset.

1,797 grey 8x8 images of 10 digits, shipped inside scikit-learn; upsampled and repeated to
3 channels so that an ImageNet backbone takes them. No official split: the study's 80/20
then 85/15 stratified rule applies.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import torch
from sklearn.datasets import load_digits

from datamodules.base import DatasetIndex, ImageClassificationDataModule
from datamodules.registry import register_dataset


@register_dataset("digits")
class DigitsDataModule(ImageClassificationDataModule):
    def __init__(
        self,
        root: str | None = None,
        image_size: int = 32,
        batch_size: int | None = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        augment: bool = True,
    ) -> None:
        super().__init__(root, image_size, batch_size, eval_batch_size, num_workers, augment)
        self._images: torch.Tensor | None = None

    def load_index(self) -> DatasetIndex:
        digits = load_digits()
        grey = torch.from_numpy(np.rint(digits.images * 255 / 16).astype(np.uint8))
        self._images = grey.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
        labels = digits.target.astype(np.int64)
        return DatasetIndex(
            [str(d) for d in range(10)], list(range(len(labels))), labels, {"all": np.arange(len(labels))}
        )

    def load_image(self, item: Hashable) -> torch.Tensor:
        if self._images is None:
            self.load_index()
        return self._images[item]

"""The train loader's throughput (decode + the study's augmentation, N worker processes), to set
against the images per second a training step consumes: a loader slower than the step starves the GPU."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from datamodules import DATAMODULES


def write_jpegs(root: Path, count: int, classes: int = 8) -> None:
    """`count` 500x375 JPEGs in class folders (the size of a typical Pets / Caltech image)."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (375 // 8 + 1, 500 // 8 + 1, 3), dtype=np.uint8)
    for i in range(count):
        # smooth image plus noise: compresses like a photo (~50-80 kB at quality 90)
        image = np.kron(np.roll(base, i, axis=1), np.ones((8, 8, 1), dtype=np.uint8))[:375, :500]
        image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
        path = root / f"class{i % classes}" / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path, quality=90)


def images_per_second(datamodule, epochs: int = 1) -> float:
    """Training images per second over `epochs` passes of the train loader (workers started once)."""
    loader = datamodule.train_dataloader()
    iterator_started = time.perf_counter()
    count = 0
    for _ in range(epochs):
        for images, _ in loader:
            count += len(images)
    return count / (time.perf_counter() - iterator_started)


def loader_throughput(
    image_size: int,
    batch_size: int,
    workers: int,
    images: int = 256,
    dataset: str = "image-folder",
    root: str | None = None,
) -> dict[str, object]:
    """Images/s of the train loader on `root` (a dataset of `dataset`), or on generated JPEGs."""
    images = max(images, 100)  # the study's stratified splits need a few images per class in each split
    source = f"{dataset} at {root}" if root else f"{images} generated 500x375 JPEGs"
    with tempfile.TemporaryDirectory() as scratch:
        if root is None:
            root = str(Path(scratch) / "images")
            write_jpegs(Path(root), images)
        datamodule = DATAMODULES.get(dataset)(
            root=root, image_size=image_size, batch_size=batch_size, num_workers=workers, verify_images=False
        )
        datamodule.setup("fit")
        return {"source": source, "workers": workers, "images_per_s": images_per_second(datamodule, epochs=2)}

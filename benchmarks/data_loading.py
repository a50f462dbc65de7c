"""Train-loader throughput per worker at 224x224: decoding the original files vs the cache.

    python benchmarks/data_loading.py [--dataset NAME --root DIR] [--images 400] [--epochs 2]

Without a dataset, writes a folder of 500x375 JPEGs (the size of a typical Pets / Caltech image)
to a temporary folder. Both loaders run in this one process with one thread (`num_workers=0`,
as one DataLoader worker runs), with the study's training augmentation, side by side.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from app.bench.loader import images_per_second, write_jpegs  # noqa: E402
from datamodules import DATAMODULES  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="image-folder")
    p.add_argument("--root")
    p.add_argument("--images", type=int, default=400, help="generated images (without --root)")
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        root = args.root
        if root is None:
            root = Path(scratch) / "images"
            write_jpegs(root, args.images)
            size = sum(f.stat().st_size for f in root.rglob("*.jpg")) / args.images / 1e3
            print(f"generated {args.images} JPEGs of 500x375 ({size:.0f} kB each) in {root}")
        options = dict(root=str(root), image_size=224, batch_size=32, num_workers=0, verify_images=False)
        decode = DATAMODULES.get(args.dataset)(**options)
        cached = DATAMODULES.get(args.dataset)(**options, cache=True, cache_dir=str(Path(scratch) / "cache"))
        start = time.perf_counter()
        cached.prepare_data()
        cached.setup()
        build = time.perf_counter() - start
        n = len(cached.index.items)
        print(f"cache built once: {n} images in {build:.1f} s ({n / build:.0f} images/s, one process)")
        decoded = images_per_second(decode, args.epochs)
        from_cache = images_per_second(cached, args.epochs)
        print(
            f"train loader, 224x224, per worker: decoding the files {decoded:.0f} images/s, "
            f"from the cache {from_cache:.0f} images/s ({from_cache / decoded:.1f}x)"
        )


if __name__ == "__main__":
    main()

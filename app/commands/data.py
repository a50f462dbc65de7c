"""Check a dataset folder before spending GPU hours on it: class count and split sizes.

    python -m app data --dataset flowers-102 --root /data/flowers [--json]

Reads the official index files, decodes every image once (remembered under `<root>/.cache`)
and prints the number of classes and the train / val / test sizes under the study's split
rules, test already cut to 1,000 images.
"""

from __future__ import annotations

import argparse
import json
import sys

from modules.registry import ConfigError


def parser() -> argparse.ArgumentParser:
    from datamodules import DATAMODULES

    p = argparse.ArgumentParser(
        prog="python -m app data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", required=True, help=f"one of: {', '.join(DATAMODULES.names())}")
    p.add_argument("--root", required=True, help="the dataset folder")
    p.add_argument("--json", action="store_true", help="print one JSON object (dataset, num_classes, train, val, test)")
    p.add_argument("--no-image-check", action="store_true", help="do not decode every image")
    p.add_argument("--skip-bad-images", action="store_true", help="report unreadable images and count without them")
    return p


def main(argv: list[str]) -> int:
    from datamodules import DATAMODULES, FileImageDataModule

    args = parser().parse_args(argv)
    try:
        cls = DATAMODULES.get(args.dataset)
        options = {
            "verify_images": not args.no_image_check,
            "on_bad_image": "skip" if args.skip_bad_images else "error",
        }
        dm = cls(root=args.root, **(options if issubclass(cls, FileImageDataModule) else {}))
        dm.setup()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sizes = {split: len(dm.datasets[split]) for split in ("train", "val", "test")}
    summary = {"dataset": args.dataset, "num_classes": dm.num_classes, **sizes}
    if args.json:
        print(json.dumps(summary))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{args.dataset} at {args.root}")
    table.add_column("classes", justify="right")
    for split in sizes:
        table.add_column(split, justify="right")
    table.add_row(str(dm.num_classes), *(str(n) for n in sizes.values()))
    Console().print(table)
    print("files checked: the splits follow the study's rules (test cut to at most 1,000 images)")
    return 0

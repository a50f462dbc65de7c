"""The study's 40 backbones and their metadata (BENCHMARK.md, "Backbones").

    python -m app backbones [--size small|medium|large] [--json]

`name` is what `--model.backbone` takes (the paper's name works too); `batch` is the default
per-device batch of the experiment configs for classic AT (halved for TRADES).
"""

from __future__ import annotations

import argparse
import json

COLUMNS = [  # (header, field)
    ("name", "name"),
    ("paper name", "paper_name"),
    ("weights", "source"),
    ("size", "size"),
    ("type", "model_type"),
    ("pre-training", "pretraining_strategy"),
    ("data", "pretraining_data"),
    ("volume", "pretraining_volume"),
    ("batch", "batch_size"),
]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m app backbones", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", choices=["small", "medium", "large"], help="only this size class")
    p.add_argument("--json", action="store_true", help="print a JSON list of entries, every field")
    return p


def source(info) -> str:
    return f"file ({info.checkpoint_format}: {info.architecture})" if info.checkpoint_format else "timm hub"


def main(argv: list[str]) -> int:
    from modules.model.backbone_zoo import BACKBONES

    args = parser().parse_args(argv)
    entries = [info for info in BACKBONES.values() if args.size in (None, info.size)]
    if args.json:
        print(json.dumps([info.as_dict() for info in entries], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(entries)} backbones (python -m app backbones --json for every field)")
    for header, _ in COLUMNS:
        table.add_column(
            header,
            justify="right" if header in ("volume", "batch") else "left",
            no_wrap=header in ("name", "paper name"),
            overflow="fold",
        )
    for info in entries:
        values = info.as_dict() | {"source": source(info)}
        table.add_row(
            *(f"{values[field]:,}" if field == "pretraining_volume" else str(values[field]) for _, field in COLUMNS)
        )
    console = Console()
    Console(width=None if console.is_terminal else 240).print(table)
    return 0

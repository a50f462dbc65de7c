"""Export a fine-tuned checkpoint as a plain timm state dict plus its normalization constants.

    python -m app export --ckpt runs/.../checkpoints/best.ckpt --out exported/model.safetensors

Writes `--out` (a .safetensors file, or a torch.save file for any other suffix) holding the
timm network's state dict, loadable with
`timm.create_model(timm_name, num_classes=N).load_state_dict(...)`, and `--out` with suffix
.json: timm name, num_classes, mean, std (apply them to [0, 1] images), class names if known.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modules.registry import ConfigError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m app export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--ckpt", required=True, help="a checkpoint written by `python -m app fit`")
    p.add_argument("--out", required=True, help="the weights file to write (.safetensors or .pt)")
    p.add_argument("--class-names", help="a text file with one class name per line, in label order")
    return p


def main(argv: list[str]) -> int:
    from modules.model.export import export_checkpoint

    args = parser().parse_args(argv)
    try:
        names = None
        if args.class_names:
            path = Path(args.class_names)
            if not path.is_file():
                raise ConfigError(f"class names file not found: {path}")
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        weights, meta = export_checkpoint(args.ckpt, args.out, names)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {weights} (timm state dict) and {meta} (timm name, num_classes, mean, std)")
    return 0

"""Export a fine-tuned checkpoint as a timm / Hugging Face model folder with a robustness model card.

    python -m app export --ckpt runs/.../checkpoints/best.ckpt --out exported/my-model [--push ORG/NAME]

writes `--out/` (config.json, model.safetensors, results.json when the run's test measured these
weights, README.md: the model card), loadable with
`timm.create_model("local-dir:exported/my-model", pretrained=True)` and measured again with
`python -m app test --model.backbone local-dir:exported/my-model --model.keep_head true --data NAME`.
`--push ORG/NAME` uploads it to the Hugging Face hub (your token, as huggingface_hub finds it).
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
    p.add_argument("--out", required=True, help="the folder to write (new, empty, or an earlier export to replace)")
    p.add_argument("--class-names", help="a text file with one class name per line, in label order")
    p.add_argument("--push", metavar="ORG/NAME", help="upload the folder to this Hugging Face hub repository")
    return p


def class_names(path: str | None) -> list[str] | None:
    if not path:
        return None
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"class names file not found: {file}")
    return [line.strip() for line in file.read_text().splitlines() if line.strip()]


def main(argv: list[str]) -> int:
    from modules.model.export import check_destination, export_folder, exported_model, push_folder
    from modules.model.model_card import card_text

    args = parser().parse_args(argv)
    out = Path(args.out)
    try:
        check_destination(out)
        exported = exported_model(args.ckpt, class_names(args.class_names))
        name = args.push or out.resolve().name
        load_as = f"hf-hub:{args.push}" if args.push else f"local-dir:{args.out}"
        export_folder(exported, out, card_text(exported, name, load_as))
        print(f"wrote {out}/: {', '.join(sorted(path.name for path in out.iterdir()))}")
        if exported.record is None:
            print("its card has no figures: the run's test did not measure this checkpoint (see README.md)")
        if args.push:
            print(f"pushed to {push_folder(out, args.push)}")
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0

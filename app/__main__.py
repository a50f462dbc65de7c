"""`python -m app SUBCOMMAND ...`.

`fit`, `validate` and `test` go to LightningCLI; the other subcommands are small
tools (`app/commands/<name>.py`, each exposing `main(argv) -> int`).
"""

from __future__ import annotations

import importlib
import sys

TOOLS = {
    "data": "check a dataset folder and print its split sizes",
    "backbones": "list the study's backbones and their metadata",
    "report": "the paper's analysis over results.json files and CSVs",
    "export": "export a fine-tuned checkpoint as a timm state dict plus normalization constants",
    "weights": "pretrained weights in the local cache: status, and fetch before going offline",
    "sweep": "the study (or a slice) as one resumable command on Ray Tune: search, then final training",
    "bench": "what a training step, the data loader and each measurement cost here, as ratios",
}


TRAINING = {
    "fit": "fine-tune a backbone (then test the best checkpoint)",
    "validate": "run the validation loop on a checkpoint",
    "test": "the five robustness measurements on a checkpoint",
}


def usage() -> str:
    lines = ["usage: python -m app SUBCOMMAND [options]   (python -m app SUBCOMMAND --help for its options)", ""]
    lines += [f"  {name:<10} {text}" for name, text in (TRAINING | TOOLS).items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] in TOOLS:
        command = importlib.import_module(f"app.commands.{argv[0]}")
        return command.main(argv[1:])
    from app.cli import run_cli

    return run_cli(argv)


if __name__ == "__main__":
    sys.exit(main())

"""Wall time of each robustness measurement for a fine-tuned checkpoint, on N test images.

    python benchmarks/measurement_time.py --config RUN/config.yaml --ckpt RUN/checkpoints/best.ckpt \
        [--images 64] [--attack autoattack|apgd|apgd-t|square|fab] [--precision 32|bf16] \
        [--measurements clean linf l2 l1 common]

Uses the run's own data module and radii (the `robustness` group of its config) and prints one
line per measurement: accuracy and seconds, and seconds per image.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import yaml  # noqa: E402
from torch import nn  # noqa: E402

from datamodules.registry import DATAMODULES  # noqa: E402
from modules import RobustFineTuneModule  # noqa: E402
from modules.evaluation import EvaluationSettings, evaluate  # noqa: E402
from modules.evaluation.measurements import autocast  # noqa: E402


def load_run(config_path: str, ckpt: str) -> tuple[nn.Module, object, dict[str, float]]:
    """A run's model (eval mode, CPU), its test set and its radii (linf, l2, l1)."""
    config = yaml.safe_load(Path(config_path).read_text())
    data_config = config["data"]
    classes = {DATAMODULES.get(name).__name__: DATAMODULES.get(name) for name in DATAMODULES}
    data = classes[data_config["class_path"].rsplit(".", 1)[-1]](**data_config.get("init_args", {}))
    data.setup("test")
    model = RobustFineTuneModule.load_from_checkpoint(ckpt, map_location="cpu").model.eval()
    robustness = config.get("robustness", {})
    eps = {
        "linf": robustness.get("linf_eps", 4 / 255),
        "l2": robustness.get("l2_eps", 2.0),
        "l1": robustness.get("l1_eps", 75.0),
    }
    return model, data.datasets["test"], eps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--attack", default="autoattack")
    parser.add_argument("--precision", default="32", choices=["32", "bf16"])
    parser.add_argument("--measurements", nargs="+", default=["clean", "linf", "l2", "l1", "common"])
    args = parser.parse_args()

    model, dataset, eps = load_run(args.config, args.ckpt)
    indices = list(range(min(args.images, len(dataset))))
    print(
        f"{len(indices)} test images of {len(dataset)}, attack {args.attack} in {args.precision}, eps {eps}, "
        f"{torch.get_num_threads()} threads"
    )
    settings = EvaluationSettings(
        attack=args.attack,
        eps=eps,
        num_examples=len(dataset),
        precision_name=args.precision,
        precision=autocast("cpu", args.precision),
    )
    report = evaluate(model, dataset, indices, args.measurements, settings, torch.device("cpu"))
    for name, seconds in report["seconds"].items():
        column = f"{name}_acc"
        print(
            f"{name:>7}: accuracy {report['accuracy'][column]:.3f}  {seconds:8.1f} s  "
            f"({seconds / len(indices):.3f} s/image)"
        )


if __name__ == "__main__":
    main()

"""Wall time of each robustness measurement for a fine-tuned checkpoint, on N test images.

    python benchmarks/measurement_time.py --config RUN/config.yaml --ckpt RUN/checkpoints/best.ckpt \
        [--images 64] [--budget autoattack|apgd] [--measurements clean linf l2 l1 common]

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

from datamodules.registry import DATAMODULES  # noqa: E402
from modules import RobustFineTuneModule  # noqa: E402
from modules.callbacks.robustness import evaluate  # noqa: E402
from modules.measurements import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--budget", default="autoattack", choices=["autoattack", "apgd"])
    parser.add_argument("--measurements", nargs="+", default=["clean", "linf", "l2", "l1", "common"])
    args = parser.parse_args()

    config = yaml.safe_load(Path(args.config).read_text())
    data_config = config["data"]
    classes = {DATAMODULES.get(name).__name__: DATAMODULES.get(name) for name in DATAMODULES}
    data = classes[data_config["class_path"].rsplit(".", 1)[-1]](**data_config.get("init_args", {}))
    data.setup("test")
    dataset = data.datasets["test"]
    model = RobustFineTuneModule.load_from_checkpoint(args.ckpt, map_location="cpu").model.eval()
    robustness = config.get("robustness", {})
    eps = {"linf": robustness.get("linf_eps", 4 / 255), "l2": robustness.get("l2_eps", 2.0),
           "l1": robustness.get("l1_eps", 75.0)}
    indices = list(range(min(args.images, len(dataset))))
    print(f"{len(indices)} test images of {len(dataset)}, budget {args.budget}, eps {eps}, "
          f"{torch.get_num_threads()} threads")
    report = evaluate(model, dataset, indices, args.measurements,
                      Settings(budget=args.budget, eps=eps, num_examples=len(dataset)), torch.device("cpu"))
    for name, seconds in report["seconds"].items():
        column = f"{name}_acc"
        print(f"{name:>7}: accuracy {report['accuracy'][column]:.3f}  {seconds:8.1f} s  "
              f"({seconds / len(indices):.3f} s/image)")


if __name__ == "__main__":
    main()

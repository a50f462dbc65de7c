"""The standard AutoAttack of this project against the reference (`pyautoattack`), and in fp32 against
bf16, side by side in one run, on a fine-tuned checkpoint's test images.

    python benchmarks/autoattack_reference.py --config RUN/config.yaml --ckpt RUN/checkpoints/last.ckpt \
        [--images 64] [--eps linf=0.0157 l2=0.3 l1=1.5] [--queries 5000]

For each norm: robust accuracy, the examples each component broke, the examples robust for one
side only, and seconds (the ratio ours / reference); then our robust accuracy and seconds with the
attack run under bf16 autocast. Radii default to the run's own (`robustness` group).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from app.bench.measurements import ours_autoattack, reference_autoattack  # noqa: E402
from benchmarks.measurement_time import load_run  # noqa: E402

NORM_OF = {"linf": "Linf", "l2": "L2", "l1": "L1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--eps", nargs="*", default=[], help="NAME=VALUE for linf, l2, l1")
    parser.add_argument("--queries", type=int, default=5000)
    args = parser.parse_args()

    model, dataset, eps = load_run(args.config, args.ckpt)
    eps |= {name: float(value) for name, value in (item.split("=") for item in args.eps)}
    n = min(args.images, len(dataset))
    x = torch.stack([dataset[i][0] for i in range(n)])
    y = torch.tensor([int(dataset[i][1]) for i in range(n)])
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
    print(
        f"{n} test images, clean accuracy {clean:.4f}, Square {args.queries} queries, {torch.get_num_threads()} threads"
    )
    for name, norm in NORM_OF.items():
        ours = ours_autoattack(model, x, y, norm, eps[name], queries=args.queries)
        theirs = reference_autoattack(model, x, y, norm, eps[name], queries=args.queries)
        mine, their = ours.robust, theirs.robust
        print(
            f"{norm} eps {eps[name]:.4g}: ours {mine.float().mean():.4f} ({ours.seconds:.1f} s), reference "
            f"{their.float().mean():.4f} ({theirs.seconds:.1f} s), time ratio {ours.seconds / theirs.seconds:.2f}; "
            f"robust for ours only {int((mine & ~their).sum())}, for the reference only {int((their & ~mine).sum())}"
        )
        print(f"  broken by ours {ours.broken_by}")
        print(f"  by the reference {theirs.broken_by}")
        low = ours_autoattack(model, x, y, norm, eps[name], queries=args.queries, bf16=True)
        print(
            f"  bf16: ours {low.robust.float().mean():.4f} ({low.seconds:.1f} s, time ratio bf16/fp32 "
            f"{low.seconds / ours.seconds:.2f}), robust in bf16 but broken in fp32: "
            f"{int((low.robust & ~mine).sum())}, broken by {low.broken_by}"
        )


if __name__ == "__main__":
    main()

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
import logging
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from pyautoattack import AutoAttack as ReferenceAutoAttack  # noqa: E402

from benchmarks.measurement_time import load_run  # noqa: E402
from modules.attacks import AutoAttack  # noqa: E402
from modules.attacks.autoattack import COMPONENTS  # noqa: E402
from modules.attacks.base import BROKEN, ROBUST  # noqa: E402

NORM_OF = {"linf": "Linf", "l2": "L2", "l1": "L1"}


class AccuracyLog(logging.Handler):
    """Collects the reference's "robust accuracy after <ATTACK>: xx.xx%" lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.after: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        found = re.match(r"robust accuracy after ([A-Z-]+): ([\d.]+)%", record.getMessage())
        if found:
            self.after[found[1].lower()] = float(found[2]) / 100


def ours(model, x, y, norm: str, eps: float, queries: int, precision: torch.dtype | None):
    started = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision is not None):
        _, outcome = AutoAttack(model, norm, eps, square_queries=queries).run(x, y)
    seconds = time.perf_counter() - started
    counts = {name: int((outcome == BROKEN + k).sum()) for k, name in enumerate(COMPONENTS)}
    return outcome == ROBUST, counts, seconds


def reference(model, x, y, norm: str, eps: float, queries: int):
    attack = ReferenceAutoAttack(model, norm=norm, eps=eps, version="standard", seed=0, device="cpu")
    attack.square.n_queries = queries
    handler = AccuracyLog()
    logger = logging.getLogger("auto-attack")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    started = time.perf_counter()
    with torch.random.fork_rng():
        _, y_adv = attack.run_standard_evaluation(x, y, batch_size=len(x))
    seconds = time.perf_counter() - started
    logger.removeHandler(handler)
    with torch.no_grad():
        before = int((model(x).argmax(1) == y).sum())
    counts = {}
    for name in COMPONENTS:
        after = round(handler.after.get(name, before / len(y)) * len(y))
        counts[name], before = before - after, after
    return y_adv == y, counts, seconds


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
    print(f"{n} test images, clean accuracy {clean:.4f}, Square {args.queries} queries, "
          f"{torch.get_num_threads()} threads")
    for name, norm in NORM_OF.items():
        mine, counts, seconds = ours(model, x, y, norm, eps[name], args.queries, None)
        theirs, their_counts, their_seconds = reference(model, x, y, norm, eps[name], args.queries)
        print(f"{norm} eps {eps[name]:.4g}: ours {mine.float().mean():.4f} ({seconds:.1f} s), reference "
              f"{theirs.float().mean():.4f} ({their_seconds:.1f} s), time ratio {seconds / their_seconds:.2f}; "
              f"robust for ours only {int((mine & ~theirs).sum())}, for the reference only "
              f"{int((theirs & ~mine).sum())}")
        print(f"  broken by ours {counts}")
        print(f"  by the reference {their_counts}")
        low, low_counts, low_seconds = ours(model, x, y, norm, eps[name], args.queries, torch.bfloat16)
        print(f"  bf16: ours {low.float().mean():.4f} ({low_seconds:.1f} s, time ratio bf16/fp32 "
              f"{low_seconds / seconds:.2f}), robust in bf16 but broken in fp32: {int((low & ~mine).sum())}, "
              f"broken by {low_counts}")


if __name__ == "__main__":
    main()

"""`python -m app bench`: what a training step, the data loader and each measurement cost on this machine.

    python -m app bench --backbone resnet18 --image-size 64 --batch-size 16 [--device cpu|cuda]
        [--precision 32|bf16] [--attack apgd --attack-steps 10] [--compare] [--max-batch] [--reference]
        [--json]
    python -m app bench --suite OUT [--quick]     a GPU node checked and priced (app/bench/suite.py)

Every figure is measured in this one run, side by side, so the ratios mean the same on any machine:
the training attack against its floor (K forward passes with an input gradient), model FLOP
utilisation against the device's peak, the loader against the training step, our AutoAttack against
the reference's. Random weights (no download); the median of --repeats after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from app.bench.loader import loader_throughput
from app.bench.measurements import measurement_cost
from app.bench.steps import Setup, largest_batch, step_composition
from app.bench.suite import PARTS as SUITE_PARTS
from modules.attacks import AttackConfig
from modules.evaluation.cost import device_name
from modules.evaluation.measurements import PRECISIONS
from modules.registry import ConfigError, first_line


def parse(argv: list[str]) -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(
        prog="python -m app bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--backbone", default="resnet18", help="a study backbone or any timm name (random weights)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cuda" if cuda else "cpu", help="cpu or cuda[:N]")
    p.add_argument("--precision", default="bf16" if cuda else "32", choices=list(PRECISIONS))
    p.add_argument("--attack", default="apgd", help="the training attack (an attack registry name)")
    p.add_argument("--attack-steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, default=2, help="data loader worker processes")
    p.add_argument("--loader-images", type=int, default=256, help="generated JPEGs the loader reads")
    p.add_argument("--measure-images", type=int, default=8, help="images per measurement (0: skip them)")
    p.add_argument("--aa-steps", type=int, default=100, help="APGD / FAB steps of the AutoAttack (standard: 100)")
    p.add_argument("--square-queries", type=int, default=5000, help="Square queries (standard: 5000)")
    p.add_argument("--reference", action="store_true", help="also time pyautoattack on the same model and images")
    p.add_argument("--compare", action="store_true", help="torch.compile and channels-last against the plain model")
    p.add_argument("--max-batch", action="store_true", help="the largest batch whose TRADES step fits (CUDA)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--suite", metavar="OUT", help="the whole suite (app/bench/suite.py) into the folder OUT")
    p.add_argument("--quick", action="store_true", help="the suite in minutes on a CPU (small backbones)")
    p.add_argument("--budget", type=float, help="the suite's seconds (default: 480, --quick 600)")
    p.add_argument("--parts", default=",".join(SUITE_PARTS), help="the suite's parts to run, comma-separated")
    return p.parse_args(argv)


def check_device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"--device {name!r}: expected cpu or cuda[:N] ({first_line(error)})") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {name!r}: expected cpu or cuda[:N]")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"--device {name!r}: no CUDA device is visible to torch {torch.__version__} "
            "(torch.cuda.is_available() is False); use --device cpu"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"--device {name!r}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    return device


def run(args: argparse.Namespace) -> dict[str, object]:
    device = check_device(args.device)
    attack = AttackConfig(args.attack, "Linf", 4 / 255, steps=args.attack_steps)
    setup = Setup(
        args.backbone, args.image_size, args.batch_size, str(device), args.precision, attack, repeats=args.repeats
    )
    result: dict[str, object] = {
        "backbone": args.backbone,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "device": device_name(device),
        "training_attack": f"{args.attack}, {args.attack_steps} steps",
    }
    steps = step_composition(setup)
    result["steps"] = steps
    result |= {
        "attack_floor_ratio": steps["attack_floor_ratio"],
        "mfu": steps["mfu"].get("trades"),
        "train_images_per_s": steps["images_per_s"]["trades"],
    }
    loader = loader_throughput(args.image_size, args.batch_size, args.workers, args.loader_images)
    result["loader"] = loader
    result["loader_images_per_s"] = loader["images_per_s"]
    if args.compare:
        result["variants"] = {
            name: step_composition(Setup(**vars(setup) | options))["seconds"]
            for name, options in (("compile", {"compile": True}), ("channels_last", {"channels_last": True}))
        }
    if args.max_batch:
        result["max_batch"] = largest_batch(setup)
    if args.measure_images:
        result["measurements"] = measurement_cost(
            setup, args.measure_images, args.aa_steps, args.square_queries, args.reference
        )
    return result


def print_table(r: dict) -> None:
    steps = r["steps"]
    print(
        f"{r['backbone']} at {r['image_size']}x{r['image_size']}, batch {r['batch_size']}, {r['precision']} on "
        f"{r['device']}; training attack {r['training_attack']}"
    )
    print(f"{'part':<12} {'seconds':>9} {'images/s':>9} {'GFLOP':>9} {'MFU':>7} {'peak MB':>8}")
    for name, seconds in steps["seconds"].items():
        images = steps["images_per_s"].get(name)
        flops, mfu, memory = steps["flops"].get(name), steps["mfu"].get(name), steps["peak_memory_mb"].get(name)
        print(
            f"{name:<12} {seconds:>9.4f} {f'{images:.1f}' if images else '-':>9} "
            f"{f'{flops / 1e9:.2f}' if flops else '-':>9} {f'{mfu:.3f}' if mfu is not None else '-':>7} "
            f"{f'{memory:.0f}' if memory else '-':>8}"
        )
    print(f"peak: {steps['peak_flops'] / 1e12:.3g} TFLOP/s ({steps['peak_source']})")
    k = steps["attack_steps"]
    print(
        f"attack / ({k} x forward+input-gradient) = {steps['attack_floor_ratio']:.3f}; per gradient "
        f"({k + 1} taken) = {steps['attack_per_gradient_ratio']:.3f}; TRADES step / clean step = "
        f"{steps['seconds']['trades'] / steps['seconds']['clean']:.2f}"
    )
    loader = r["loader"]
    print(
        f"loader: {loader['images_per_s']:.0f} images/s with {loader['workers']} workers ({loader['source']}); "
        f"the TRADES step consumes {r['train_images_per_s']:.0f} images/s (loader / step "
        f"{loader['images_per_s'] / r['train_images_per_s']:.2f})"
    )
    for name, seconds in r.get("variants", {}).items():
        ratio = ", ".join(
            f"{part} {seconds[part] / steps['seconds'][part]:.2f}" for part in ("clean", "attack", "trades")
        )
        print(f"{name}: time / plain: {ratio}")
    if "max_batch" in r:
        print(f"largest TRADES batch that fits: {r['max_batch']}")
    if "measurements" in r:
        m = r["measurements"]
        cost = ", ".join(f"{name} {value:.3f}" for name, value in m["seconds_per_image"].items())
        print(
            f"measurement seconds per image ({m['images']} images, AutoAttack {m['autoattack_steps']} steps, "
            f"Square {m['square_queries']} queries): {cost}"
        )
        for norm, ref in m.get("reference", {}).items():
            print(
                f"AutoAttack {norm}: ours {ref['ours_seconds']:.1f} s, pyautoattack {ref['reference_seconds']:.1f} s "
                f"(ours / reference {ref['time_ratio']:.2f}); robust accuracy {ref['ours_accuracy']:.3f} vs "
                f"{ref['reference_accuracy']:.3f}"
            )


def suite(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.bench.suite import markdown, run_suite

    result = run_suite(Path(args.suite), check_device(args.device), args.quick, args.budget, args.parts.split(","))
    print(markdown(result), end="")
    return 0 if result["passed"] else 1


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.suite:
            return suite(args)
        result = run(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (torch.cuda.OutOfMemoryError, MemoryError, RuntimeError) as error:
        if not isinstance(error, torch.cuda.OutOfMemoryError | MemoryError) and "allocate" not in str(error):
            raise
        print(
            f"error: a batch of {args.batch_size} does not fit on {args.device} ({first_line(error)}); "
            "try a smaller --batch-size (--max-batch finds the largest on a GPU)",
            file=sys.stderr,
        )
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0

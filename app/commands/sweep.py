"""The study, or a slice of it, as one resumable command on Ray Tune.

    python -m app sweep --config SWEEP.yaml --out DIR [--dry-run [--gpus N ...]] [--bench FILE ...]
                        [--address ADDR] [--max-cells K] [--only KEY=V1,V2 ...] [--shard I/N]
                        [--retry-failed]

Each cell (protocol x dataset x backbone x loss) is searched (ASHA within a budget of device time,
minimising val/robust_loss), then trained once with the chosen values; every run is an
`app fit` in DIR/<protocol>/<dataset>/<backbone>/<loss>/ (trials/<id>/, best.yaml, final/).
As many cells run side by side as the cluster holds. DIR/sweep.csv is the ledger. Run the same
command again to continue after any interruption. Ray runs embedded on this machine unless
--address names a cluster (`auto` on one of its nodes, or HOST:PORT); DIR must then be on a
filesystem every node shares.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from app.sweep.scheduler import cells_in_flight
from modules.registry import ConfigError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m app sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", required=True, type=Path, help="the sweep file (configs/sweep/*.yaml)")
    p.add_argument("--out", required=True, type=Path, help="the sweep's folder (created; kept across re-runs)")
    p.add_argument(
        "--dry-run", action="store_true", help="print the cells, what is missing and an estimate; launch nothing"
    )
    p.add_argument("--address", help="a Ray cluster to run on: auto, HOST:PORT or ray://HOST:PORT")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="only the cells whose axis KEY (protocol, dataset, backbone, loss, ...) has one of the values",
    )
    p.add_argument(
        "--shard", metavar="I/N", help="every N-th cell from the I-th (0 <= I < N): N shards partition the cells"
    )
    p.add_argument("--retry-failed", action="store_true", help="run the cells recorded failed again")
    p.add_argument(
        "--max-cells", type=int, metavar="K", help="at most K cells in flight (default: as many as the cluster holds)"
    )
    p.add_argument(
        "--bench",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="`python -m app bench --json` or `--suite` output: the cost estimate prices its backbones from it",
    )
    p.add_argument(
        "--wait-for-nodes",
        type=int,
        metavar="N",
        help="with --address: first wait (up to 10 minutes) until the cluster has N live nodes",
    )
    p.add_argument(
        "--gpus",
        action="append",
        default=[],
        type=int,
        metavar="N",
        help="with --dry-run: the wall-clock on a cluster of N GPUs (repeatable; default: this machine or --address)",
    )
    return p


def positive(flag: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{flag} {value}: expected an integer >= 1")


def resources_text(resources: dict[str, float]) -> str:
    return ", ".join(f"{key} {value:g}" for key, value in resources.items())


def devices_per_run(resources: dict[str, float]) -> float:
    return max(resources.get("gpu", 0.0), 1.0)


def clusters(args: argparse.Namespace, sweep) -> list[tuple[str, dict[str, float], int]]:
    """The clusters to give the wall-clock for: (description, a run's resources, runs at once)."""
    from app.sweep.cluster import run_resources

    if args.gpus:
        found = []
        for gpus in args.gpus:
            resources = run_resources(sweep.resources, gpus)
            per_run = resources.get("gpu", 0.0)
            found.append((f"{gpus} GPUs", resources, int(gpus // per_run) if per_run > 0 else 0))
        return found
    if args.address:
        try:
            import ray
        except ImportError:
            raise ConfigError("--address needs Ray: pip install -e '.[sweep]'") from None

        from app.sweep.cluster import capacity, connect, namespace, wait_for_nodes

        connect(args.address, namespace(args.out.expanduser().resolve()))
        if args.wait_for_nodes:
            wait_for_nodes(args.wait_for_nodes)
        resources = run_resources(sweep.resources, ray.cluster_resources().get("GPU", 0))
        return [(f"the cluster at {args.address}", resources, capacity(resources))]
    import torch

    gpus = torch.cuda.device_count()
    resources = run_resources(sweep.resources, gpus)
    here = {"CPU": float(os.cpu_count() or 1), "GPU": float(gpus)}
    from app.sweep.cluster import slots

    return [(f"this machine ({os.cpu_count()} CPUs, {gpus} GPUs)", resources, slots(here, resources))]


def print_estimate(args: argparse.Namespace, sweep, selected, out: Path, planned, benches) -> None:
    from app.sweep.cost import PARTS, estimate
    from app.sweep.progress import duration

    clusters_found = clusters(args, sweep)
    priced = estimate(sweep, planned.todo(), out, selected, benches, devices_per_run(clusters_found[0][1]))
    total = sum(priced.hours.values())
    print(
        f"about {total:,.1f} GPU-hours left: "
        + ", ".join(f"{part} {priced.hours[part]:,.1f}" for part in PARTS)
        + (f"; not counted: datasets of unknown size {', '.join(priced.unestimated)}" if priced.unestimated else "")
    )
    sources: dict[str, list[str]] = {}
    for backbone, source in sorted(priced.sources.items()):
        sources.setdefault(source, []).append(backbone)
    for source, backbones in sources.items():
        shown = ", ".join(backbones[:3]) + (f" and {len(backbones) - 3} more" if len(backbones) > 3 else "")
        print(f"  priced from {source}: {shown}")
    concurrent = sweep.search.concurrent_trials
    for description, resources, runs in clusters_found:
        if runs < 1:
            why = "its runs use no GPU" if args.gpus and not resources.get("gpu") else "a run does not fit there"
            print(f"wall-clock on {description}: {why} ({resources_text(resources)})")
            continue
        in_flight = cells_in_flight(max(1, runs // concurrent), args.max_cells)
        wall = priced.wall_seconds(in_flight)
        print(f"wall-clock on {description}: about {duration(wall)} ({in_flight} cells in flight)")


def writable(out: Path) -> Path:
    out = out.expanduser().resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as error:
        raise ConfigError(f"--out {out} is not writable ({error.strerror or error})") from None
    return out


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from app.bench.files import read_benches
    from app.sweep.cells import cells, only, shard
    from app.sweep.cluster import check_address
    from app.sweep.ledger import Ledger
    from app.sweep.plan import plan
    from app.sweep.spec import read_sweep

    try:
        positive("--max-cells", args.max_cells)
        positive("--wait-for-nodes", args.wait_for_nodes)
        if args.wait_for_nodes and not args.address:
            raise ConfigError("--wait-for-nodes needs --address (the cluster whose nodes to wait for)")
        for gpus in args.gpus:
            positive("--gpus", gpus)
        if args.address:
            check_address(args.address)
        benches = [bench for path in args.bench for bench in read_benches(path)]
        sweep = read_sweep(args.config)
        selected = shard(only(cells(sweep), args.only, sweep), args.shard)
        out = args.out.expanduser().resolve() if args.dry_run else writable(args.out)
        if args.address and not args.out.is_absolute():
            print(
                f"note: --out is {out} on this machine; every node of the cluster must see that same path",
                file=sys.stderr,
            )
        planned = plan(sweep, selected, out, Ledger(out))
        counts = planned.counts()
        print(f"{len(selected)} cells: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        for blocker in planned.blockers():
            print(f"missing: {blocker}")
        print_estimate(args, sweep, selected, out, planned, benches)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.dry_run:
        return 0
    if planned.blockers():
        print(f"error: {len(planned.blockers())} missing (listed above): nothing was launched", file=sys.stderr)
        return 2
    try:
        import ray  # noqa: F401
    except ImportError:
        print("error: python -m app sweep needs Ray: pip install -e '.[sweep]'", file=sys.stderr)
        return 2
    from app.sweep.driver import run_sweep

    try:
        return run_sweep(sweep, selected, out, args.address, args.retry_failed, args.max_cells)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

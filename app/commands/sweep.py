"""The study, or a slice of it, as one resumable command on Ray Tune.

    python -m app sweep --config SWEEP.yaml --out DIR [--dry-run] [--address ADDR]
                        [--only KEY=V1,V2 ...] [--shard I/N] [--retry-failed]

Each cell (protocol x dataset x backbone x loss) is searched (ASHA under a time budget,
minimising val/robust_loss), then trained once with the chosen values; every run is an
`app fit` in DIR/<protocol>/<dataset>/<backbone>/<loss>/ (trials/<id>/, best.yaml, final/).
DIR/sweep.csv is the ledger. Run the same command again to continue after any interruption.
Ray runs embedded on this machine unless --address names a cluster (`auto` on one of its
nodes, or HOST:PORT); DIR must then be on a filesystem every node shares.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

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
    return p


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
    from app.sweep.cells import cells, only, shard
    from app.sweep.driver import check_address, run_sweep
    from app.sweep.ledger import Ledger
    from app.sweep.plan import plan
    from app.sweep.spec import read_sweep

    try:
        if args.address:
            check_address(args.address)
        sweep = read_sweep(args.config)
        selected = shard(only(cells(sweep), args.only, sweep), args.shard)
        out = args.out.expanduser().resolve() if args.dry_run else writable(args.out)
        if args.address and not args.out.is_absolute():
            print(
                f"note: --out is {out} on this machine; every node of the cluster must see that same path",
                file=sys.stderr,
            )
        planned = plan(sweep, selected, out, Ledger(out))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = planned.counts()
    print(f"{len(selected)} cells: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for blocker in planned.blockers():
        print(f"missing: {blocker}")
    estimate = f"about {planned.gpu_hours:,.1f} GPU-hours left (search budget + final training"
    print(
        estimate
        + (f"; not counted: datasets of unknown size {', '.join(planned.unestimated)})" if planned.unestimated else ")")
    )
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
    try:
        return run_sweep(sweep, selected, out, args.address, args.retry_failed)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

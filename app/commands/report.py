"""`python -m app report [--results PATH...] --out DIR [--no-paper | --paper FILE] [--place-as PROTOCOL]`:
your runs and tables analysed as a study of their own and placed among the paper's published
results, beside the paper's own analysis (see app/report).

`python -m app report --plan PROTOCOL --datasets K`: the K datasets to run first to place a new
configuration of PROTOCOL in its ranking, and the error to expect."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

from app.report import Report, ReportInputError, build_report
from app.report.load import read_csv
from app.report.markdown import table
from app.report.paper import PAPER_RESULTS, is_paper_results, validation_figures
from app.report.prediction import Published, choose
from modules.runs import public_mode
from modules.vocabulary import PROTOCOL_NAMES, accepted, paper_protocol


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app report", description=__doc__)
    p.add_argument(
        "--results",
        nargs="*",
        default=[],
        type=Path,
        help="run directories, results.json files and CSVs in the schema of paper_results.csv",
    )
    reference = p.add_mutually_exclusive_group()
    reference.add_argument(
        "--no-paper",
        action="store_true",
        help="leave out the paper's 1,440 published results (by default your runs are placed among them)",
    )
    reference.add_argument(
        "--paper",
        type=Path,
        metavar="FILE",
        help="a table in the paper's schema to use as the published results (an updated release, a subset)",
    )
    p.add_argument(
        "--place-as",
        metavar="PROTOCOL",
        help="place runs of protocols the published results lack among this protocol's configurations (fft50...)",
    )
    p.add_argument("--out", type=Path, help="directory to write the report into")
    p.add_argument(
        "--plan",
        metavar="PROTOCOL",
        help="print the datasets to run first to place a new configuration of PROTOCOL (with --datasets K)",
    )
    p.add_argument("--datasets", type=int, default=2, metavar="K", help="--plan: how many datasets (1..5)")
    return p


def _protocol(option: str, value: str) -> str:
    """The paper's name of a protocol given on the command line; one clear line when unknown."""
    name = paper_protocol(value)
    if name is None:
        raise ReportInputError(f"{option} {value!r}: unknown protocol; expected one of {accepted(PROTOCOL_NAMES)}")
    return name


def plan(protocol: str, k: int, reference: Path) -> str:
    """The K datasets with the smallest held-out error, the next candidates, and, for the shipped
    results, the nested validation of benchmarks/placement.py."""
    protocol = _protocol("--plan", protocol)
    rows = read_csv(reference)
    if protocol not in set(rows["ft_strategy"]):
        raise ReportInputError(f"--plan {protocol!r}: {reference} has no results of this protocol")
    published = Published.of(rows, protocol)
    if not 1 <= k < len(published.datasets):
        raise ReportInputError(
            f"--datasets {k}: expected 1..{len(published.datasets) - 1} (fewer than the protocol's "
            f"{len(published.datasets)} datasets)"
        )
    ranked = choose(published, k)
    candidates = pd.DataFrame(
        [
            {"datasets": "; ".join(r.seen), "median_error": r.median, "p90_error": r.p90, "mean_error": r.mean}
            for r in ranked[:5]
        ]
    )
    of = len(published.configs)
    lines = [
        f"{protocol}: run {', '.join(ranked[0].seen)} first ({k} of {len(published.datasets)} datasets).",
        f"Predicted rank error on held-out published backbones: mean {ranked[0].mean:.1f}, median "
        f"{ranked[0].median:g}, 90th percentile {ranked[0].p90:g} places of {of}",
        "(chosen on these same held-out errors, so slightly optimistic).",
    ]
    if is_paper_results(reference):
        nested = validation_figures().set_index(["protocol", "k"]).loc[(protocol, k)]
        lines.append(
            f"Measured with the choice made without the held-out backbone (benchmarks/placement.py): median "
            f"{nested['median']:g}, 90th percentile {nested['p90']:g}, 80% interval covering {nested['coverage']:.0%}; "
            f"ranking on these datasets alone: median {nested['baseline_median']:g}."
        )
    return "\n".join([*lines, "", "The best subsets:", "", table(candidates)])


def summary(report: Report) -> str:
    parts = []
    if report.study is not None:
        parts.append(
            f"your study: {len(report.study.results)} results, {len(report.study.rankings)} ranked configurations"
        )
    if report.published is not None:
        parts.append(f"published: {len(report.published.results)} results")
    placed = len(report.placements) + len(report.protocol_placements) + len(report.predicted_placements)
    return "; ".join([*parts, f"{placed} placements", f"{len(report.skipped)} skipped"])


def _publish(built: Path, out: Path) -> None:
    """Move the finished report to `out`, replacing an earlier report there."""
    built.chmod(public_mode(0o777))  # mkdtemp made it private
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        out.rename(old / out.name)
        built.rename(out)
        shutil.rmtree(old)
    else:
        built.rename(out)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    reference = None if args.no_paper else args.paper or PAPER_RESULTS
    try:
        if args.plan is not None:
            print(plan(args.plan, args.datasets, args.paper or PAPER_RESULTS))
            return 0
        place_as = _protocol("--place-as", args.place_as) if args.place_as else None
    except ReportInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.out is None:
        parser().error("--out is required (or --plan PROTOCOL)")
    out: Path = args.out.resolve()
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / "report.md").exists())):
        print(
            f"error: --out {out} exists and is not an earlier report (no report.md); expected a new or empty directory",
            file=sys.stderr,
        )
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        report = build_report(args.results, building, reference=reference, place_as=place_as)
    except ReportInputError as error:
        shutil.rmtree(building)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BaseException:
        shutil.rmtree(building)
        raise
    _publish(building, out)
    print(f"wrote {out / 'report.md'} ({summary(report)})")
    return 0

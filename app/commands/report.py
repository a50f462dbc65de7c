"""`python -m app report [--results PATH...] --out DIR [--no-paper]`: the paper's analysis over
results.json runs and CSV tables, placed among the paper's published results (see app/report)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from app.report import ReportInputError, build_report
from modules.runs import public_mode


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app report", description=__doc__)
    p.add_argument(
        "--results",
        nargs="*",
        default=[],
        type=Path,
        help="run directories, results.json files and CSVs in the schema of paper_results.csv",
    )
    p.add_argument(
        "--no-paper",
        action="store_true",
        help="leave out the paper's 1,440 published results (by default your runs are placed among them)",
    )
    p.add_argument("--out", required=True, type=Path, help="directory to write the report into")
    return p


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
        report = build_report(args.results, building, paper=not args.no_paper)
    except ReportInputError as error:
        shutil.rmtree(building)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BaseException:
        shutil.rmtree(building)
        raise
    _publish(building, out)
    print(
        f"wrote {out / 'report.md'} ({len(report.results)} results, {len(report.rankings)} ranked "
        f"configurations, {len(report.skipped)} skipped)"
    )
    return 0

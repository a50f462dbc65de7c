"""The paper's analysis over results: Borda rankings, agreement between measurements,
TRADES versus classic AT, low-cost proxies, figures and a markdown summary.

`build_report(paths, out_dir)` is the entry point (`python -m app report` calls it, with
the published results shipped in `data/` added unless `--no-paper`).
When CSV tables (such as the paper's `paper_results.csv`) and the app's runs are given
together, the tables are the analysed set and each run is placed among them; given
only runs, or only tables, the analysis is over what was given.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from modules.vocabulary import PAPER_COLUMNS

from . import figures
from .agreement import agreement
from .borda import incomplete_configurations, rankings
from .cost import cost_table
from .errors import ReportInputError
from .load import SOURCE, Skip, load_results
from .markdown import write_markdown
from .paper import PAPER_RESULTS, is_paper_results
from .placement import placements, protocol_placements
from .proxies import proxy_correlations
from .trades_vs_at import duels, per_backbone, win_counts

__all__ = ["Report", "ReportInputError", "analyse", "build_report", "load_results"]


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@dataclass
class Report:
    results: pd.DataFrame  # the analysed rows, paper schema (+ source)
    user_runs: pd.DataFrame  # runs placed among `results` (empty when nothing to place)
    rankings: pd.DataFrame
    rankings_by_size: pd.DataFrame
    incomplete: pd.DataFrame
    correlations: pd.DataFrame
    mac: pd.DataFrame
    duels: pd.DataFrame
    wins: pd.DataFrame
    wins_per_backbone: pd.DataFrame
    proxies: pd.DataFrame
    placements: pd.DataFrame
    protocol_placements: pd.DataFrame  # user configurations covering a protocol's datasets, in its ranking
    skipped: list[Skip] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)
    cost: pd.DataFrame = field(default_factory=pd.DataFrame)  # runs that recorded their cost (app/report/cost.py)


def analyse(results: pd.DataFrame, user_runs: pd.DataFrame | None = None, skipped: list[Skip] | None = None) -> Report:
    """Every table of the report (no files written)."""
    user_runs = user_runs if user_runs is not None else results.iloc[:0]
    ranked, by_size = rankings(results), rankings(results, by_size=True)
    correlations, mac = agreement(results)
    table = duels(results)
    return Report(
        results=results,
        user_runs=user_runs,
        rankings=ranked,
        rankings_by_size=by_size,
        incomplete=incomplete_configurations(results),
        correlations=correlations,
        mac=mac,
        duels=table,
        wins=win_counts(table),
        wins_per_backbone=per_backbone(table),
        proxies=proxy_correlations(ranked, by_size),
        placements=placements(user_runs, results),
        protocol_placements=protocol_placements(user_runs, results),
        skipped=list(skipped or []),
    )


def _write_tables(report: Report, out_dir: Path) -> None:
    report.results[list(PAPER_COLUMNS)].to_csv(out_dir / "results.csv")  # with the paper's unnamed index
    tables = {
        "rankings": report.rankings,
        "rankings_by_size": report.rankings_by_size,
        "incomplete": report.incomplete,
        "agreement": report.correlations,
        "agreement_mac": report.mac,
        "trades_vs_at": report.wins,
        "trades_vs_at_backbones": report.wins_per_backbone,
        "trades_vs_at_duels": report.duels,
        "proxies": report.proxies,
        "skipped": pd.DataFrame([vars(s) for s in report.skipped], columns=["path", "reason"]),
    }
    if len(report.cost):
        tables["cost"] = report.cost
    if len(report.user_runs):
        tables |= {
            "user_runs": report.user_runs[[*PAPER_COLUMNS, SOURCE]],
            "placements": report.placements,
            "protocol_placements": report.protocol_placements,
        }
    for name, table in tables.items():
        table.to_csv(out_dir / f"{name}.csv", index=False)


def build_report(
    paths: list[str | Path], out_dir: str | Path, log: Callable[[str], None] = _warn, paper: bool = False
) -> Report:
    """Read `paths` (CSV tables, results.json files, run directories) and write the
    report into `out_dir`; skipped runs and excluded configurations go to `log`.
    `paper`: add the published results (once, if `paths` does not hold them already)."""
    paths = [Path(p) for p in paths]
    if paper and not any(is_paper_results(p) for p in paths):
        paths.append(PAPER_RESULTS)
    if not paths:
        raise ReportInputError("no results given: pass --results PATH... (or leave out --no-paper)")
    loaded = load_results(paths)
    for skip in loaded.skipped:
        log(str(skip))
    published, user_runs = (loaded.tables, loaded.runs) if len(loaded.tables) else (loaded.runs, loaded.runs.iloc[:0])
    if published.empty:
        raise ReportInputError("no results to analyse: every run given was skipped (see the messages above)")
    report = analyse(published, user_runs, loaded.skipped)
    report.cost = cost_table(loaded.runs)
    for _, row in report.incomplete.iterrows():
        log(
            f"excluded from the {row['protocol']} ranking: {row['backbone']} / {row['loss']} "
            f"lacks {row['missing_datasets']}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_tables(report, out_dir)
    directory = out_dir / "figures"
    report.figures = {
        "clean_vs_robust": figures.clean_vs_robust(published, user_runs, directory),
        "agreement_heatmap": figures.agreement_heatmap(report.correlations, directory),
        "rankings": figures.ranking_bars(report.rankings, directory, report.protocol_placements),
        "rank_comparison": figures.rank_comparison(report.rankings, directory),
        "odds_ratios": figures.odds_ratios(report.wins, directory),
    }
    write_markdown(report, out_dir / "report.md")
    return report

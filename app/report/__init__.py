"""The paper's analysis over results: Borda rankings, agreement between measurements, loss
against loss, low-cost proxies, figures and a markdown summary; the user's own runs analysed
the same way as a study of their own, and placed among the published results where comparable.

`build_report(paths, out_dir, reference=...)` is the entry point (`python -m app report` calls
it with the published results shipped in `data/`, or `--paper FILE`, unless `--no-paper`).
The reference table is analysed as the published study; every other CSV table and run given
is the user's study, analysed on its own and placed among the reference where comparable.
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
from .load import CHECKS, SOURCE, Skip, load_results, read_csv
from .losses import duels, per_backbone, win_counts
from .markdown import write_markdown
from .paper import is_paper_results
from .placement import LABEL, placeable, placements, predicted_placements, protocol_placements
from .proxies import proxy_correlations, proxy_pairs

__all__ = ["Analysis", "Report", "ReportInputError", "analyse", "build_report", "load_results"]

STUDY = "study"  # the folder of the user's own study inside the report


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@dataclass
class Analysis:
    """The paper's analysis over one set of results (the published study, or the user's)."""

    results: pd.DataFrame  # the analysed rows, paper schema (+ source)
    rankings: pd.DataFrame
    rankings_by_size: pd.DataFrame
    incomplete: pd.DataFrame
    correlations: pd.DataFrame
    mac: pd.DataFrame
    duels: pd.DataFrame
    wins: pd.DataFrame
    wins_per_backbone: pd.DataFrame
    proxy_pairs: list[tuple[str, str]]
    proxies: pd.DataFrame
    figures: dict[str, Path] = field(default_factory=dict)


@dataclass
class Report:
    published: Analysis | None  # the reference table (the paper's, by default)
    study: Analysis | None  # the user's own runs and tables
    placements: pd.DataFrame  # each comparable run among the published of its protocol and dataset
    protocol_placements: pd.DataFrame  # configurations covering a protocol's datasets, in its ranking
    predicted_placements: pd.DataFrame  # configurations covering some of them: a predicted rank
    place_as: str | None = None
    skipped: list[Skip] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)  # figures of the placements
    cost: pd.DataFrame = field(default_factory=pd.DataFrame)  # runs that recorded their cost (app/report/cost.py)


def analyse(results: pd.DataFrame) -> Analysis:
    """Every table of one study's analysis (no files written)."""
    ranked, by_size = rankings(results), rankings(results, by_size=True)
    correlations, mac = agreement(results)
    table = duels(results)
    pairs = proxy_pairs(list(ranked["protocol"].unique()))
    return Analysis(
        results=results,
        rankings=ranked,
        rankings_by_size=by_size,
        incomplete=incomplete_configurations(results),
        correlations=correlations,
        mac=mac,
        duels=table,
        wins=win_counts(table),
        wins_per_backbone=per_backbone(table),
        proxy_pairs=pairs,
        proxies=proxy_correlations(ranked, by_size, pairs),
    )


def _write_analysis(analysis: Analysis, out_dir: Path, extra: list[str]) -> None:
    """The analysis's CSVs and figures into `out_dir` (results.csv: paper columns, then `extra`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    analysis.results[[*PAPER_COLUMNS, *extra]].to_csv(out_dir / "results.csv")  # with the paper's unnamed index
    tables = {
        "rankings": analysis.rankings,
        "rankings_by_size": analysis.rankings_by_size,
        "incomplete": analysis.incomplete,
        "agreement": analysis.correlations,
        "agreement_mac": analysis.mac,
        "losses": analysis.wins,
        "losses_backbones": analysis.wins_per_backbone,
        "losses_duels": analysis.duels,
        "proxies": analysis.proxies,
    }
    for name, table in tables.items():
        table.to_csv(out_dir / f"{name}.csv", index=False)


def _analysis_figures(
    analysis: Analysis, directory: Path, runs: pd.DataFrame | None = None, yours: pd.DataFrame | None = None
) -> None:
    """The analysis's figures; `runs` and `yours`: the user's runs and configurations placed among it."""
    rows = analysis.results
    analysis.figures = {
        "clean_vs_robust": figures.clean_vs_robust(rows, rows.iloc[:0] if runs is None else runs, directory),
        "agreement_heatmap": figures.agreement_heatmap(analysis.correlations, directory),
        "rankings": figures.ranking_bars(analysis.rankings, directory, yours),
    }
    if analysis.proxy_pairs:
        analysis.figures["rank_comparison"] = figures.rank_comparison(
            analysis.rankings, analysis.proxy_pairs, directory
        )
    if analysis.wins["size"].nunique() > 2:  # size classes to compare (besides "all")
        analysis.figures["odds_ratios"] = figures.odds_ratios(analysis.wins, directory)


def _reference(paths: list[Path], reference: Path | None) -> tuple[list[Path], Path | None]:
    """(the user's paths, the reference table): a path given that holds the shipped paper table is
    the reference when no other one is named; a copy of the reference is not analysed twice."""
    if reference is None:
        reference = next((p for p in paths if is_paper_results(p)), None)
    return [p for p in paths if reference is None or not is_paper_results(p, reference)], reference


def build_report(
    paths: list[str | Path],
    out_dir: str | Path,
    log: Callable[[str], None] = _warn,
    reference: str | Path | None = None,
    place_as: str | None = None,
) -> Report:
    """Read `paths` (CSV tables, results.json files, run directories) and `reference` (a table in
    the paper's schema, the published study) and write the report into `out_dir`; skipped runs and
    excluded configurations go to `log`. `place_as`: a published protocol to place the runs of
    every other protocol among."""
    paths, reference = _reference([Path(p) for p in paths], Path(reference) if reference is not None else None)
    if not paths and reference is None:
        raise ReportInputError("no results given: pass --results PATH... (or leave out --no-paper)")
    published = read_csv(reference) if reference is not None else None
    if place_as is not None and (published is None or place_as not in set(published["ft_strategy"])):
        raise ReportInputError(f"--place-as {place_as!r}: the published results have no such protocol to place among")
    loaded = load_results(paths)
    for skip in loaded.skipped:
        log(str(skip))
    mine = pd.concat([t for t in (loaded.tables, loaded.runs) if len(t)] or [loaded.runs], ignore_index=True)
    if mine.empty and published is None:
        raise ReportInputError("no results to analyse: every run given was skipped (see the messages above)")
    comparable = placeable(mine, published, place_as) if published is not None else mine.iloc[:0]
    report = Report(
        published=analyse(published) if published is not None else None,
        study=analyse(mine) if len(mine) else None,
        placements=placements(comparable, published) if published is not None else pd.DataFrame(),
        protocol_placements=protocol_placements(comparable, published) if published is not None else pd.DataFrame(),
        predicted_placements=predicted_placements(comparable, published) if published is not None else pd.DataFrame(),
        place_as=place_as,
        skipped=list(loaded.skipped),
        cost=cost_table(loaded.runs),
    )
    for analysis in (report.published, report.study):
        for _, row in analysis.incomplete.iterrows() if analysis else ():
            log(
                f"excluded from the {row['protocol']} ranking: {row['backbone']} / {row['loss']} "
                f"lacks {row['missing_datasets']}"
            )
    out_dir = Path(out_dir)
    _write(report, out_dir, comparable)
    write_markdown(report, out_dir / "report.md")
    return report


def _write(report: Report, out_dir: Path, comparable: pd.DataFrame) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if report.published is not None:
        _write_analysis(report.published, out_dir, [])
        shown = comparable.assign(ft_strategy=comparable[LABEL]) if len(comparable) else comparable
        _analysis_figures(report.published, out_dir / "figures", shown, report.protocol_placements)
    if report.study is not None:
        flags = [CHECKS] if CHECKS in report.study.results else []
        _write_analysis(report.study, out_dir / STUDY, [SOURCE, *flags])
        _analysis_figures(report.study, out_dir / STUDY / "figures")
    tables = {"skipped": pd.DataFrame([vars(s) for s in report.skipped], columns=["path", "reason"])}
    if len(report.cost):
        tables["cost"] = report.cost
    for name in ("placements", "protocol_placements", "predicted_placements"):
        if len(getattr(report, name)):
            tables[name] = getattr(report, name)
    for name, table in tables.items():
        table.to_csv(out_dir / f"{name}.csv", index=False)
    if len(report.predicted_placements):
        report.figures["predicted_placements"] = figures.predicted_placements(
            report.predicted_placements, out_dir / "figures"
        )

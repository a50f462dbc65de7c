"""`report.md`: the tables that matter, the method choices, and links to every file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from modules.vocabulary import ACCURACY_COLUMNS

if TYPE_CHECKING:
    from . import Report

TOP = 10


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (no tabulate dependency)."""
    if frame.empty:
        return "_(none)_\n"
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _sections(report: Report, out_dir: Path) -> list[str]:
    results = report.results
    link = {name: path.relative_to(out_dir).as_posix() for name, path in report.figures.items()}
    parts = [
        "# Robust fine-tuning report\n",
        f"{len(results)} results: {results['backbone'].nunique()} backbones, {results['dataset'].nunique()} "
        f"datasets, {results['loss_function'].nunique()} losses, {results['ft_strategy'].nunique()} protocols "
        f"(all rows: [results.csv](results.csv)).\n",
        "## Borda rankings\n",
        "Within each protocol every (backbone, loss) configuration is ranked on each (dataset, measurement) "
        "pair (higher accuracy first, ties share the average rank) and the ranks are added: the lowest total "
        'is the best. `rank` orders the totals; **equal totals share the lowest rank (method="min")**. '
        "A configuration lacking a dataset that others of its protocol have is **excluded** from that "
        "protocol's ranking (see [incomplete.csv](incomplete.csv)), since fewer ranks would flatter it.\n",
    ]
    for protocol, ranked in report.rankings.groupby("protocol", sort=False):
        parts += [f"### {protocol}: top {min(TOP, len(ranked))} of {len(ranked)}\n", table(ranked.head(TOP))]
    parts += [
        "Full: [rankings.csv](rankings.csv); within each size class: [rankings_by_size.csv](rankings_by_size.csv).\n",
        f"![Borda totals]({link['rankings']})\n",
    ]
    if len(report.incomplete):
        parts += ["### Incomplete configurations (excluded)\n", table(report.incomplete)]
    parts += [
        "## Agreement between measurements\n",
        "Spearman correlations between the five measurements over the results rows of each protocol (one per "
        "backbone, loss and dataset); MAC is the mean absolute off-diagonal correlation "
        "([agreement.csv](agreement.csv)).\n",
        table(report.mac),
        f"![Spearman correlations]({link['agreement_heatmap']})\n",
        "## TRADES versus classic AT\n",
        "For every (backbone, dataset, measurement) with both losses, the higher accuracy wins; ties are "
        "counted but left out of the tests. `win_odds` = TRADES wins / AT wins, with the exact sign test "
        "`sign_p` (above 1: TRADES wins more often). `odds_ratio` / `p_value`: Fisher's exact test of a size "
        "class against the other size classes, on [[TRADES wins, AT wins] in the class, [TRADES wins, AT "
        "wins] in the others] (above 1: TRADES wins relatively more often in that class). Per backbone: "
        "[trades_vs_at_backbones.csv](trades_vs_at_backbones.csv).\n",
        table(report.wins),
        f"![Odds ratios]({link['odds_ratios']})\n",
        "## Low-cost proxies\n",
        "Spearman correlation between the configurations' Borda totals under a cheap protocol and under "
        "FFT (50 epochs), over the configurations ranked under both (size classes use the per-class "
        "rankings).\n",
        table(report.proxies),
        f"![Proxy rankings]({link['rank_comparison']})\n",
        "## Clean versus robust accuracy\n",
        f"![Clean vs Linf accuracy]({link['clean_vs_robust']})\n",
    ]
    if len(report.placements):
        parts += [
            "## Your runs among the published results\n",
            "Each run is ranked with the published configurations of its protocol and dataset, per measurement "
            "(`rank_*`, ties averaged) and by the sum of those ranks (`rank`, of `out_of`). Your runs are the "
            "red stars in the scatter plot ([placements.csv](placements.csv)).\n",
            table(report.placements.drop(columns=["source", *[f"rank_{m}" for m in ACCURACY_COLUMNS]])),
        ]
    if len(report.protocol_placements):
        parts += [
            "### In the protocols' Borda rankings\n",
            "Your configurations with runs on every dataset of their protocol, ranked with the published "
            "configurations over all of them (`rank` of `out_of`); they are the hatched bars of the ranking "
            "figure ([protocol_placements.csv](protocol_placements.csv)).\n",
            table(report.protocol_placements),
        ]
    if len(report.cost):
        parts += [
            "## What the runs cost\n",
            "Device-hours of each run (devices x wall time of the fit, plus each measurement's) and its accuracies "
            "per device-hour ([cost.csv](cost.csv)).\n",
            table(report.cost),
        ]
    if report.skipped:
        parts += ["## Skipped inputs\n", table(pd.DataFrame([vars(s) for s in report.skipped]))]
    parts += ["## Files\n", "Every figure has its data beside it as CSV in [figures/](figures/).\n"]
    return parts


def write_markdown(report: Report, path: Path) -> None:
    path.write_text("\n".join(_sections(report, path.parent)))

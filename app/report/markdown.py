"""`report.md`: the tables that matter, the method choices, and links to every file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from modules.vocabulary import ACCURACY_COLUMNS

from .load import CHECKS, SOURCE
from .paper import validation_figures

if TYPE_CHECKING:
    from . import Analysis, Report

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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 'es' if noun.endswith('s') else 's'}"


def describe(rows: pd.DataFrame) -> str:
    counts = (rows[c].nunique() for c in ("backbone", "dataset", "loss_function", "ft_strategy"))
    named = [_count(n, noun) for n, noun in zip(counts, ("backbone", "dataset", "loss", "protocol"))]
    return f"{_count(len(rows), 'result')}: {', '.join(named)}"


def _analysis(analysis: Analysis, out_dir: Path, folder: str, level: str) -> list[str]:
    """The sections of one study's analysis; its files are in `out_dir / folder`."""
    at = f"{folder}/" if folder else ""
    link = {name: path.relative_to(out_dir).as_posix() for name, path in analysis.figures.items()}
    parts = [
        f"{level} Borda rankings\n",
        "Within each protocol every (backbone, loss) configuration is ranked on each (dataset, measurement) "
        "pair (higher accuracy first, ties share the average rank) and the ranks are added: the lowest total "
        'is the best. `rank` orders the totals; **equal totals share the lowest rank (method="min")**. '
        "A configuration lacking a dataset that others of its protocol have is **excluded** from that "
        f"protocol's ranking (see [incomplete.csv]({at}incomplete.csv)), since fewer ranks would flatter it.\n",
    ]
    for protocol, ranked in analysis.rankings.groupby("protocol", sort=False):
        parts += [f"{level}# {protocol}: top {min(TOP, len(ranked))} of {len(ranked)}\n", table(ranked.head(TOP))]
    parts += [
        f"Full: [rankings.csv]({at}rankings.csv); within each size class: "
        f"[rankings_by_size.csv]({at}rankings_by_size.csv).\n",
        f"![Borda totals]({link['rankings']})\n",
    ]
    if len(analysis.incomplete):
        parts += [f"{level}# Incomplete configurations (excluded)\n", table(analysis.incomplete)]
    parts += [
        f"{level} Agreement between measurements\n",
        "Spearman correlations between the five measurements over the results rows of each protocol (one per "
        "backbone, loss and dataset); MAC is the mean absolute off-diagonal correlation "
        f"([agreement.csv]({at}agreement.csv)).\n",
        table(analysis.mac),
        f"![Spearman correlations]({link['agreement_heatmap']})\n",
        f"{level} Loss against loss\n",
    ]
    if analysis.wins.empty:
        parts.append("No backbone, dataset and protocol has results under two losses.\n")
    else:
        parts += [
            "For every (backbone, dataset, measurement) with both losses of a pair, the higher accuracy wins; ties "
            "are counted but left out of the tests. `win_odds` = `loss_a`'s wins / `loss_b`'s wins, with the exact "
            "sign test `sign_p` (above 1: `loss_a` wins more often). `odds_ratio` / `p_value`: Fisher's exact test "
            "of a size class against the other size classes (above 1: `loss_a` wins relatively more often in that "
            f"class). Per backbone: [losses_backbones.csv]({at}losses_backbones.csv).\n",
            table(analysis.wins),
        ]
        if "odds_ratios" in link:
            parts.append(f"![Odds ratios]({link['odds_ratios']})\n")
        if analysis.results["backbone"].nunique() <= 2 * TOP:
            parts += [f"{level}# By backbone\n", table(analysis.wins_per_backbone)]
    if analysis.proxy_pairs:
        parts += [
            f"{level} Low-cost proxies\n",
            "Spearman correlation between the configurations' Borda totals under a cheaper protocol and under "
            "the most expensive one (most epochs, then the most of the network trained), over the configurations "
            "ranked under both (size classes use the per-class rankings).\n",
            table(analysis.proxies),
            f"![Proxy rankings]({link['rank_comparison']})\n",
        ]
    parts += [f"{level} Clean versus robust accuracy\n", f"![Clean vs Linf accuracy]({link['clean_vs_robust']})\n"]
    return parts


def _predicted(report: Report, out_dir: Path) -> list[str]:
    predicted = report.predicted_placements
    validation = validation_figures()
    quoted = validation[validation["k"].isin(set(predicted["k"]))]
    figure = report.figures["predicted_placements"].relative_to(out_dir).as_posix()
    return [
        "### Placement from fewer datasets\n",
        "A configuration with runs on only some datasets of its protocol gets its protocol rank **predicted** "
        "with an 80% interval (`low`..`high`, of `out_of`): its ranks on the datasets it has, plus the rank sum "
        "on the missing ones predicted by a linear fit on the published configurations (the missing datasets' "
        "rank sum against the rank sum of each dataset it has), compared with the published configurations' "
        "totals. The interval adds the 10th and 90th percentiles of the fit's errors on held-out published "
        "backbones. `held_out_*_error`: the fit's absolute rank errors on held-out published backbones for the "
        "same datasets ([predicted_placements.csv](predicted_placements.csv)).\n",
        table(predicted.drop(columns="k")),
        f"![Predicted placements]({figure})\n",
        "Measured on the paper's published results by `benchmarks/placement.py`, leaving out one backbone at a "
        "time (both "
        "of its losses; the fit and the choice of datasets made without it), with the datasets "
        "`python -m app report --plan PROTOCOL --datasets K` picks; `baseline`: ranking on the observed datasets "
        "only, on the same folds and datasets. Errors in places of 79.\n",
        table(quoted),
    ]


def _flagged(results: pd.DataFrame) -> list[str]:
    """A warning before any ranking: the runs whose figures the reference AutoAttack's checks flag."""
    if CHECKS not in results:
        return []
    flagged = results[results[CHECKS].fillna("").astype(str) != ""]
    if not len(flagged):
        return []
    return [
        f"**Warning: {_count(len(flagged), 'run')} with figures that the reference AutoAttack's checks flag** "
        "(masked or randomized gradients, probabilities for logits, too many target classes, ...): their robust "
        "accuracies may be too high, and they are ranked and placed below as measured. The `checks` column of "
        "results.csv and placements.csv names the measurements and checks; each run's results.json says why.\n",
        table(flagged[["backbone", "dataset", "loss_function", "ft_strategy", CHECKS, SOURCE]]),
    ]


def _sections(report: Report, out_dir: Path) -> list[str]:
    study, published = report.study, report.published
    parts = ["# Robust fine-tuning report\n"]
    if study is not None:
        parts.append(f"Your study: {describe(study.results)} ([study/results.csv](study/results.csv)).\n")
        parts += _flagged(study.results)
    if published is not None:
        parts.append(f"Published reference: {describe(published.results)} ([results.csv](results.csv)).\n")
    if report.place_as:
        parts.append(
            f"`--place-as`: runs of protocols the reference lacks are placed among its {report.place_as} "
            "configurations, labelled `<their protocol> placed as <that protocol>`.\n"
        )
    if study is not None:
        parts += [
            "## Your study\n",
            "Your runs and tables analysed on their own, the way the paper analyses its results, over the grid "
            "they cover (files in [study/](study/)).\n",
            *_analysis(study, out_dir, "study", "###"),
        ]
    if len(report.placements):
        parts += [
            "## Your runs among the published results\n",
            "Each run of a published protocol on a published dataset, whatever its loss or backbone, is ranked with "
            "the published configurations of its protocol and dataset, per measurement (`rank_*`, ties averaged) "
            "and by the sum of those ranks (`rank`, of `out_of`). Your runs are the red stars in the scatter plot "
            "([placements.csv](placements.csv)).\n",
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
    if len(report.predicted_placements):
        parts += _predicted(report, out_dir)
    if published is not None:
        parts += ["## The published study\n", *_analysis(published, out_dir, "", "###")]
    if len(report.cost):
        parts += [
            "## What the runs cost\n",
            "Device-hours of each run (devices x wall time of the fit, plus each measurement's) and its accuracies "
            "per device-hour ([cost.csv](cost.csv)).\n",
            table(report.cost),
        ]
    if report.skipped:
        parts += ["## Skipped inputs\n", table(pd.DataFrame([vars(s) for s in report.skipped]))]
    parts += ["## Files\n", "Every figure has its data beside it as CSV in its figures/ folder.\n"]
    return parts


def write_markdown(report: Report, path: Path) -> None:
    path.write_text("\n".join(_sections(report, path.parent)))

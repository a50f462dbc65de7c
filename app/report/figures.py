"""The report's figures. Each is written as `<name>.png` with the data it plots as
`<name>.csv` beside it; every function returns the PNG's path."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from modules.vocabulary import ACCURACY_COLUMNS, CLASSIC_AT, TRADES, protocol_order  # noqa: E402

from .proxies import paired_totals  # noqa: E402

_PROTOCOL_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]
_PAPER_LOSSES = [TRADES, CLASSIC_AT]
_MARKERS = ["o", "^", "s", "D", "v", "P", "X"]
_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:cyan"]


def _losses(losses: list[str]) -> list[str]:
    """The paper's losses first (their markers and colours stay the same in every figure), then the others."""
    return [*_PAPER_LOSSES, *sorted(set(losses) - set(_PAPER_LOSSES))]


def _style(loss: str, losses: list[str], styles: list[str]) -> str:
    return styles[_losses(losses).index(loss) % len(styles)]


def _save(fig: plt.Figure, data: pd.DataFrame, directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    data.to_csv(directory / f"{name}.csv", index=False)
    path = directory / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _grid(count: int, ncols: int, width: float, height: float) -> tuple[plt.Figure, list[plt.Axes]]:
    ncols = max(1, min(ncols, count))
    nrows = max(1, math.ceil(count / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def clean_vs_robust(rows: pd.DataFrame, runs: pd.DataFrame, directory: Path) -> Path:
    """Clean versus Linf-robust accuracy, one panel per dataset; the user's runs are red stars."""
    columns = ["dataset", "ft_strategy", "backbone", "loss_function", *ACCURACY_COLUMNS]
    data = pd.concat(
        [rows[columns].assign(user_run=False), runs[columns].assign(user_run=True)], ignore_index=True
    ).rename(columns={"ft_strategy": "protocol", "loss_function": "loss"})
    datasets = sorted(data["dataset"].unique())
    protocols = protocol_order(list(data["protocol"].unique()))
    losses = list(data["loss"].unique())
    fig, axes = _grid(len(datasets), 3, 4.6, 4.0)
    for ax, dataset in zip(axes, datasets):
        of_dataset = data[(data["dataset"] == dataset) & ~data["user_run"]]
        for color, protocol in zip(itertools.cycle(_PROTOCOL_COLORS), protocols):
            for loss in _losses(losses):
                marker = _style(loss, losses, _MARKERS)
                points = of_dataset[(of_dataset["protocol"] == protocol) & (of_dataset["loss"] == loss)]
                ax.scatter(
                    points["clean_acc"],
                    points["Linf_acc"],
                    s=14,
                    alpha=0.6,
                    color=color,
                    marker=marker,
                    label=f"{protocol}, {loss}",
                )
        mine = data[(data["dataset"] == dataset) & data["user_run"]]
        if len(mine):
            ax.scatter(
                mine["clean_acc"],
                mine["Linf_acc"],
                s=160,
                marker="*",
                color="red",
                edgecolor="black",
                zorder=5,
                label="your runs",
            )
            for _, run in mine.iterrows():
                ax.annotate(
                    run["backbone"],
                    (run["clean_acc"], run["Linf_acc"]),
                    fontsize=6,
                    xytext=(4, 4),
                    textcoords="offset points",
                )
        ax.set(
            title=dataset,
            xlabel="clean accuracy",
            ylabel="Linf accuracy (eps 4/255)",
            xlim=(-0.02, 1.02),
            ylim=(-0.02, 1.02),
        )
        ax.grid(alpha=0.3)
    unique: dict[str, object] = {}
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        unique |= dict(zip(labels, handles))
    fig.legend(unique.values(), unique.keys(), loc="lower center", ncol=4, fontsize=8, bbox_to_anchor=(0.5, -0.04))
    fig.suptitle("Clean versus robust accuracy")
    fig.tight_layout()
    return _save(fig, data, directory, "clean_vs_robust")


def agreement_heatmap(correlations: pd.DataFrame, directory: Path) -> Path:
    """The Spearman matrix of the five measurements, one panel per protocol."""
    protocols = protocol_order(list(correlations["protocol"].unique()))
    fig, axes = _grid(len(protocols), 3, 4.6, 3.9)
    for index, (ax, protocol) in enumerate(zip(axes, protocols)):
        matrix = correlations[correlations["protocol"] == protocol].set_index("measurement")[list(ACCURACY_COLUMNS)]
        values = matrix.to_numpy(dtype=float)
        image = ax.imshow(values, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(len(ACCURACY_COLUMNS)), ACCURACY_COLUMNS, rotation=45, ha="right")
        ax.set_yticks(range(len(ACCURACY_COLUMNS)), ACCURACY_COLUMNS if index % 3 == 0 else [])
        for (i, j), value in np.ndenumerate(values):
            ax.text(
                j,
                i,
                "n/a" if np.isnan(value) else f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if abs(value) > 0.6 else "black",
            )
        ax.set_title(protocol)
    if axes:
        fig.colorbar(image, ax=axes, shrink=0.8, label="Spearman rho")
    return _save(fig, correlations, directory, "agreement_heatmap")


def _label(backbone: str, loss: str) -> str:
    return f"{backbone} ({'TR' if loss == TRADES else 'AT' if loss == CLASSIC_AT else loss})"


def ranking_bars(rankings: pd.DataFrame, directory: Path, yours: pd.DataFrame | None = None) -> Path:
    """Borda totals of every configuration, best at the top, one panel per protocol; the user's
    configurations placed in a protocol's ranking (`yours`) are the hatched, outlined bars."""
    marked = (
        yours.assign(backbone=yours["backbone"] + " (yours)", yours=True)
        if yours is not None and len(yours)
        else rankings.iloc[:0].assign(yours=True)
    )
    data = pd.concat([rankings.assign(yours=False), marked[rankings.columns.tolist() + ["yours"]]], ignore_index=True)
    protocols = protocol_order(list(data["protocol"].unique()))
    losses = list(data["loss"].unique())
    longest = max((len(g) for _, g in data.groupby("protocol")), default=1)
    fig, axes = _grid(len(protocols), 3, 6.2, max(3.0, 0.8 + 0.15 * longest))
    for ax, protocol in zip(axes, protocols):
        ranked = data[data["protocol"] == protocol].sort_values(["borda", "yours"])
        positions = np.arange(len(ranked))
        bars = ax.barh(positions, ranked["borda"], color=[_style(loss, losses, _COLORS) for loss in ranked["loss"]])
        for bar, mine in zip(bars, ranked["yours"]):
            if mine:
                bar.set(hatch="///", edgecolor="black", linewidth=1.2)
        ax.set_yticks(
            positions,
            [f"{r}. {_label(b, loss)}" for r, b, loss in zip(ranked["rank"], ranked["backbone"], ranked["loss"])],
            fontsize=6,
        )
        ax.invert_yaxis()
        ax.set(title=protocol, xlabel="Borda total (lower is better)")
        ax.grid(axis="x", alpha=0.3)
    shown = [loss for loss in _losses(losses) if loss in losses]
    handles = [plt.Rectangle((0, 0), 1, 1, color=_style(loss, losses, _COLORS)) for loss in shown]
    fig.legend(handles, shown, loc="upper center", ncol=len(shown), bbox_to_anchor=(0.5, 1.01))
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return _save(fig, data, directory, "rankings")


def rank_comparison(rankings: pd.DataFrame, pairs: list[tuple[str, str]], directory: Path) -> Path:
    """Each configuration's Borda total under a cheaper protocol against the target's, per (proxy, target)."""
    data = pd.concat(
        [paired_totals(rankings, proxy, target).assign(proxy=proxy, target=target) for proxy, target in pairs],
        ignore_index=True,
    )
    losses = list(data["loss"].unique()) if len(data) else []
    fig, axes = _grid(len(pairs), 2, 4.6, 4.3)
    for ax, (proxy, target) in zip(axes, pairs):
        of_pair = data[(data["proxy"] == proxy) & (data["target"] == target)]
        for loss in _losses(losses):
            points = of_pair[of_pair["loss"] == loss]
            if points.empty:
                continue
            ax.scatter(
                points["borda_target"],
                points["borda_proxy"],
                marker=_style(loss, losses, _MARKERS),
                s=18,
                alpha=0.7,
                color=_style(loss, losses, _COLORS),
                label=loss,
            )
        ax.set(xlabel=f"Borda total, {target}", ylabel=f"Borda total, {proxy}", title=f"{proxy} vs {target}")
        ax.grid(alpha=0.3)
        if len(of_pair):
            ax.legend(fontsize=8)
    return _save(fig, data, directory, "rank_comparison")


def odds_ratios(wins: pd.DataFrame, directory: Path) -> Path:
    """For the first pair of losses in `wins` (TRADES and classic AT in the paper). Left: the first
    loss's win odds per size class (sign test); right: each size class's odds ratio against the
    other classes (Fisher). Log scale, one marker per protocol."""
    a, b = wins[["loss_a", "loss_b"]].iloc[0]
    wins = wins[(wins["loss_a"] == a) & (wins["loss_b"] == b)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    protocols = protocol_order(list(wins["protocol"].unique()))
    width = 0.8 / max(1, len(protocols))
    panels = [
        (
            axes[0],
            "win_odds",
            "sign_p",
            list(dict.fromkeys(wins["size"])),
            f"{a} wins / {b} wins",
            "Which loss wins (sign test)",
        ),
        (
            axes[1],
            "odds_ratio",
            "p_value",
            [s for s in dict.fromkeys(wins["size"]) if s != "all"],
            "odds ratio vs the other sizes",
            "By model size (Fisher exact test)",
        ),
    ]
    for ax, value, p_column, sizes, ylabel, title in panels:
        for index, (color, protocol) in enumerate(zip(_PROTOCOL_COLORS, protocols)):
            of_protocol = wins[wins["protocol"] == protocol].set_index("size").reindex(sizes)
            x = np.arange(len(sizes)) + (index - (len(protocols) - 1) / 2) * width
            finite = of_protocol[value].replace([np.inf, 0], np.nan)
            ax.scatter(x, finite, color=color, label=protocol, zorder=3)
            for xi, ratio, p in zip(x, finite, of_protocol[p_column]):
                if not np.isnan(ratio):
                    ax.annotate(
                        f"p={p:.2g}", (xi, ratio), fontsize=6, xytext=(0, 6), textcoords="offset points", ha="center"
                    )
        ax.axhline(1.0, color="gray", linestyle="--", linewidth=1)
        if wins[value].replace([np.inf, 0], np.nan).notna().any():
            ax.set_yscale("log")
        ax.set_xticks(range(len(sizes)), sizes)
        ax.set(ylabel=ylabel, title=title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{a} vs {b} (> 1: {a})")
    fig.tight_layout()
    return _save(fig, wins, directory, "odds_ratios")


def predicted_placements(predicted: pd.DataFrame, directory: Path) -> Path:
    """Each configuration's predicted protocol rank (dot) and its 80% interval (bar), one panel per protocol."""
    protocols = list(dict.fromkeys(predicted["protocol"]))
    fig, axes = _grid(len(protocols), 2, 6.0, max(2.2, 0.8 + 0.35 * predicted["protocol"].value_counts().max()))
    for ax, protocol in zip(axes, protocols):
        rows = predicted[predicted["protocol"] == protocol].reset_index(drop=True)
        y = np.arange(len(rows))
        ax.errorbar(
            rows["predicted_rank"],
            y,
            xerr=[rows["predicted_rank"] - rows["low"], rows["high"] - rows["predicted_rank"]],
            fmt="o",
            color="tab:red",
            capsize=3,
        )
        ax.set_yticks(
            y,
            [f"{_label(b, loss)}: {basis}" for b, loss, basis in zip(rows["backbone"], rows["loss"], rows["basis"])],
            fontsize=7,
        )
        ax.set(xlim=(0, rows["out_of"].max() + 1), xlabel="predicted rank (80% interval), 1 = best", title=protocol)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, predicted, directory, "predicted_placements")

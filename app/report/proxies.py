"""Low-cost proxies: how well the Borda totals under a cheaper protocol order the configurations
as the most expensive protocol does, by Spearman correlation over the configurations ranked
under both. In the paper: FFT-5 and LP-50 against FFT-50; in a study of one's own, each of its
protocols against its most expensive one (`proxy_pairs`)."""

from __future__ import annotations

import pandas as pd
from scipy.stats import spearmanr

from modules.vocabulary import ADAPTATION_LABELS, protocol_epochs, protocol_order

# how much of the network an adaptation trains, least first
_TRAINS_MOST = [ADAPTATION_LABELS[name] for name in ("linear_probe", "partial", "lp_ft", "full")]


def _expense(protocol: str) -> tuple[int, int]:
    """(epochs, how much of the network trains): the larger, the more a run of the protocol costs."""
    label = protocol.split(" (")[0]
    return protocol_epochs(protocol) or 0, _TRAINS_MOST.index(label) if label in _TRAINS_MOST else -1


def proxy_pairs(protocols: list[str]) -> list[tuple[str, str]]:
    """(proxy, target) for each protocol against the most expensive one: the most epochs, then
    the protocol that trains the most of the network (FFT, LP-FT, partial, LP)."""
    if len(protocols) < 2:
        return []
    ordered = protocol_order(protocols)
    target = max(ordered, key=_expense)
    return [(proxy, target) for proxy in ordered if proxy != target]


def paired_totals(rankings: pd.DataFrame, proxy: str, target: str) -> pd.DataFrame:
    """backbone, loss, borda_proxy, borda_target (and size when `rankings` has it)."""
    keys = [c for c in ("size", "backbone", "loss") if c in rankings.columns]
    of = {name: rankings[rankings["protocol"] == name].set_index(keys)["borda"] for name in (proxy, target)}
    both = pd.concat({"borda_proxy": of[proxy], "borda_target": of[target]}, axis=1, join="inner")
    return both.reset_index()


def proxy_correlations(
    rankings: pd.DataFrame, by_size: pd.DataFrame | None = None, pairs: list[tuple[str, str]] | None = None
) -> pd.DataFrame:
    """proxy, target, size ("all" or a size class), spearman, p_value, n; `pairs` defaults to
    `proxy_pairs` of the ranked protocols."""
    pairs = proxy_pairs(list(rankings["protocol"].unique())) if pairs is None else pairs
    records = []
    for proxy, target in pairs:
        groups = [("all", paired_totals(rankings, proxy, target))]
        if by_size is not None:
            sized = paired_totals(by_size, proxy, target)
            groups += [(size, group) for size, group in sized.groupby("size", sort=False)]
        for size, both in groups:
            rho, p_value = (
                spearmanr(both["borda_proxy"], both["borda_target"]) if len(both) >= 3 else (float("nan"), float("nan"))
            )
            records.append(
                {"proxy": proxy, "target": target, "size": size, "spearman": float(rho)}
                | {"p_value": float(p_value), "n": len(both)}
            )
    return pd.DataFrame(records, columns=["proxy", "target", "size", "spearman", "p_value", "n"])

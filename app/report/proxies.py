"""Low-cost proxies: how well the Borda totals under a cheap protocol (FFT-5, LP-50)
order the configurations as the expensive one (FFT-50) does, by Spearman correlation
over the configurations ranked under both."""

from __future__ import annotations

import pandas as pd
from scipy.stats import spearmanr

from modules.vocabulary import FFT5, FFT50, LP50

PROXIES: tuple[str, ...] = (FFT5, LP50)
TARGET = FFT50


def paired_totals(rankings: pd.DataFrame, proxy: str, target: str = TARGET) -> pd.DataFrame:
    """backbone, loss, borda_proxy, borda_target (and size when `rankings` has it)."""
    keys = [c for c in ("size", "backbone", "loss") if c in rankings.columns]
    of = {name: rankings[rankings["protocol"] == name].set_index(keys)["borda"] for name in (proxy, target)}
    both = pd.concat({"borda_proxy": of[proxy], "borda_target": of[target]}, axis=1, join="inner")
    return both.reset_index()


def proxy_correlations(rankings: pd.DataFrame, by_size: pd.DataFrame | None = None) -> pd.DataFrame:
    """proxy, target, size ("all" or a size class), spearman, p_value, n."""
    records = []
    for proxy in PROXIES:
        groups = [("all", paired_totals(rankings, proxy))]
        if by_size is not None:
            sized = paired_totals(by_size, proxy)
            groups += [(size, group) for size, group in sized.groupby("size", sort=False)]
        for size, pairs in groups:
            rho, p_value = (
                spearmanr(pairs["borda_proxy"], pairs["borda_target"])
                if len(pairs) >= 3
                else (float("nan"), float("nan"))
            )
            records.append(
                {
                    "proxy": proxy,
                    "target": TARGET,
                    "size": size,
                    "spearman": float(rho),
                    "p_value": float(p_value),
                    "n": len(pairs),
                }
            )
    return pd.DataFrame(records, columns=["proxy", "target", "size", "spearman", "p_value", "n"])

"""What robustness costs: robust accuracy per device-hour (fit + measurements), for runs that recorded it."""

from __future__ import annotations

import pandas as pd

from modules.vocabulary import ACCURACY_COLUMNS


def cost_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run with a recorded cost: device, device-hours, and each accuracy per device-hour."""
    if "device_hours" not in runs:
        return pd.DataFrame()
    rows = runs[runs["device_hours"].notna() & (runs["device_hours"] > 0)]
    table = rows[
        ["backbone", "dataset", "loss_function", "ft_strategy", "device", "device_hours", *ACCURACY_COLUMNS]
    ].copy()
    for column in ACCURACY_COLUMNS:
        table[f"{column}_per_device_hour"] = rows[column] / rows["device_hours"]
    return table.reset_index(drop=True)

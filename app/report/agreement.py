"""Agreement between the five measurements: Spearman correlations and their mean
absolute value (MAC), per protocol. The units correlated are the protocol's results
rows, one per (backbone, loss, dataset)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modules.vocabulary import ACCURACY_COLUMNS, protocol_order


def spearman_matrix(rows: pd.DataFrame) -> pd.DataFrame:
    """5x5 Spearman correlations (average ranks for ties) between the measurements."""
    return rows[list(ACCURACY_COLUMNS)].astype(float).corr(method="spearman")


def mean_absolute_correlation(matrix: pd.DataFrame) -> float:
    """Mean |rho| over the off-diagonal pairs (each pair once)."""
    upper = matrix.to_numpy()[np.triu_indices(len(matrix), k=1)]
    return float(np.abs(upper).mean())


def agreement(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(correlations in long form: protocol, measurement, one column per measurement;
    MAC per protocol: protocol, mac, n)."""
    matrices, macs = [], []
    for protocol in protocol_order(list(rows["ft_strategy"].unique())):
        of_protocol = rows[rows["ft_strategy"] == protocol]
        matrix = spearman_matrix(of_protocol)
        matrices.append(matrix.rename_axis("measurement").reset_index().assign(protocol=protocol))
        macs.append({"protocol": protocol, "mac": mean_absolute_correlation(matrix), "n": len(of_protocol)})
    columns = ["protocol", "measurement", *ACCURACY_COLUMNS]
    correlations = pd.concat(matrices, ignore_index=True)[columns] if matrices else pd.DataFrame(columns=columns)
    return correlations, pd.DataFrame(macs, columns=["protocol", "mac", "n"])

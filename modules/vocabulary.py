"""The paper's vocabulary: column names, measurements, and the one mapping from the
app's protocol and loss names to the names used in `paper_results.csv`."""

from __future__ import annotations

MEASUREMENTS: tuple[str, ...] = ("clean_acc", "Linf_acc", "L2_acc", "L1_acc", "common_acc")
COST_COLUMNS: tuple[str, ...] = ("device", "device_hours")  # from a run's results.json `cost`, when recorded

# The columns of paper_results.csv, in its order (after its unnamed index column).
METADATA_COLUMNS: tuple[str, ...] = (
    "model_size", "pre_training_dataset", "pre_training_strategy",
    "volume_pre_training_data", "backbone_name", "model_type",
)
PAPER_COLUMNS: tuple[str, ...] = (
    *MEASUREMENTS, "sum", "geom", "model_size", "backbone", "dataset", "loss_function",
    "pre_training_dataset", "pre_training_strategy", "volume_pre_training_data",
    "backbone_name", "model_type", "ft_strategy",
)
# What a CSV must carry; sum/geom are recomputed (and checked when present), metadata
# comes from the backbone zoo when absent.
REQUIRED_CSV_COLUMNS: tuple[str, ...] = (*MEASUREMENTS, "backbone", "dataset", "loss_function", "ft_strategy")

# One configuration of one dataset: the unit of a results row.
ROW_KEY: list[str] = ["ft_strategy", "backbone", "loss_function", "dataset"]
# One ranked configuration within a protocol.
CONFIG_KEY: list[str] = ["backbone", "loss_function"]

# app name -> paper name. The paper names map to themselves, so either spelling is accepted.
PROTOCOLS: dict[str, str] = {
    "fft50": "FFT (50 epochs)",
    "fft5": "FFT (5 epochs)",
    "lp50": "LP (50 epochs)",
}
LOSSES: dict[str, str] = {
    "trades": "TRADES",
    "classic_at": "Classic AT",
}
TRADES, CLASSIC_AT = LOSSES["trades"], LOSSES["classic_at"]
FFT50, FFT5, LP50 = PROTOCOLS["fft50"], PROTOCOLS["fft5"], PROTOCOLS["lp50"]

SIZE_CLASSES: tuple[str, ...] = ("small", "medium", "large")
UNKNOWN = "unknown"


def _canonical(value: object, mapping: dict[str, str]) -> str | None:
    """The paper's name for an app or paper name, or None when it is neither."""
    if not isinstance(value, str):
        return None
    if value in mapping.values():
        return value
    return mapping.get(value)


def paper_protocol(value: object) -> str | None:
    return _canonical(value, PROTOCOLS)


def paper_loss(value: object) -> str | None:
    return _canonical(value, LOSSES)


def accepted(mapping: dict[str, str]) -> str:
    """The accepted spellings, for error messages."""
    return ", ".join(f"'{v}'" for pair in mapping.items() for v in pair)


def protocol_order(protocols: list[str]) -> list[str]:
    """Paper protocols first in the paper's order (FFT-50, FFT-5, LP-50), then any others."""
    known = [p for p in PROTOCOLS.values() if p in protocols]
    return known + sorted(p for p in protocols if p not in known)


def size_order(sizes: list[str]) -> list[str]:
    known = [s for s in SIZE_CLASSES if s in sizes]
    return known + sorted(s for s in sizes if s not in known)

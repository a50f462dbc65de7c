"""The paper's vocabulary, spelled once: the threat models' norms, the measurement and CSV column
names, and the one mapping from the app's protocol and loss names to the names used in
`paper_results.csv`. results.json, the measurements and the report all read it from here.

No torch, no Lightning: the report and the data package import it cheaply."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal


class Norm(StrEnum):
    """A threat model's norm as the paper and the reference AutoAttack spell it ("Linf", "L2", "L1").

    A member is a str (equal to its value), so configs and results keep plain strings."""

    LINF = "Linf"
    L2 = "L2"
    L1 = "L1"

    @property
    def measurement(self) -> str:
        """The measurement's name (`robustness.test_measurements`, `robustness.linf_eps`): "linf"."""
        return self.value.lower()

    @property
    def paper_column(self) -> str:
        """The paper's column: "Linf_acc"."""
        return f"{self.value}_acc"

    @classmethod
    def of_measurement(cls, name: str) -> Norm:
        return next(norm for norm in cls if norm.measurement == name)


# How configs and attacks spell a norm: a Literal, so that a parsed config holds plain strings.
NormName = Literal["Linf", "L2", "L1"]

ADVERSARIAL_MEASUREMENTS: tuple[str, ...] = tuple(norm.measurement for norm in Norm)  # "linf", "l2", "l1"
PAPER_EPS: dict[str, float] = {"linf": 4 / 255, "l2": 2.0, "l1": 75.0}  # the study's radii at 224x224

# A measurement's logged column (`test/linf_acc`) -> the paper's column name (`Linf_acc`).
PAPER_COLUMN_OF: dict[str, str] = {
    "clean_acc": "clean_acc",
    **{f"{norm.measurement}_acc": norm.paper_column for norm in Norm},
    "common_acc": "common_acc",
}
ACCURACY_COLUMNS: tuple[str, ...] = tuple(PAPER_COLUMN_OF.values())  # the paper's five measurements
COST_COLUMNS: tuple[str, ...] = ("device", "device_hours")  # from a run's results.json `cost`, when recorded

# The columns of paper_results.csv, in its order (after its unnamed index column).
METADATA_COLUMNS: tuple[str, ...] = (
    "model_size",
    "pre_training_dataset",
    "pre_training_strategy",
    "volume_pre_training_data",
    "backbone_name",
    "model_type",
)
PAPER_COLUMNS: tuple[str, ...] = (
    *ACCURACY_COLUMNS,
    "sum",
    "geom",
    "model_size",
    "backbone",
    "dataset",
    "loss_function",
    "pre_training_dataset",
    "pre_training_strategy",
    "volume_pre_training_data",
    "backbone_name",
    "model_type",
    "ft_strategy",
)
# What a CSV must carry; sum/geom are recomputed (and checked when present), metadata
# comes from the backbone zoo when absent.
REQUIRED_CSV_COLUMNS: tuple[str, ...] = (*ACCURACY_COLUMNS, "backbone", "dataset", "loss_function", "ft_strategy")

# One configuration of one dataset: the unit of a results row.
ROW_KEY: list[str] = ["ft_strategy", "backbone", "loss_function", "dataset"]
# One ranked configuration within a protocol.
CONFIG_KEY: list[str] = ["backbone", "loss_function"]

# app name -> the paper's display name. The paper names map to themselves, so either spelling is accepted.
PROTOCOL_NAMES: dict[str, str] = {
    "fft50": "FFT (50 epochs)",
    "fft5": "FFT (5 epochs)",
    "lp50": "LP (50 epochs)",
}
LOSS_NAMES: dict[str, str] = {
    "trades": "TRADES",
    "classic_at": "Classic AT",
}
TRADES, CLASSIC_AT = LOSS_NAMES["trades"], LOSS_NAMES["classic_at"]
# A registered adaptation protocol's display name: with its epochs it names any run's protocol the way
# the paper names its own ("FFT (50 epochs)"); registered protocols not listed here keep their name.
ADAPTATION_LABELS: dict[str, str] = {"full": "FFT", "linear_probe": "LP", "lp_ft": "LP-FT", "partial": "Partial FT"}
FFT50, FFT5, LP50 = PROTOCOL_NAMES["fft50"], PROTOCOL_NAMES["fft5"], PROTOCOL_NAMES["lp50"]

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
    return _canonical(value, PROTOCOL_NAMES)


def paper_loss(value: object) -> str | None:
    return _canonical(value, LOSS_NAMES)


def protocol_label(adaptation: str, epochs: int) -> str:
    """A run's protocol as the paper names its protocols: ("lp_ft", 50) -> "LP-FT (50 epochs)"."""
    return f"{ADAPTATION_LABELS.get(adaptation, adaptation)} ({epochs} epoch{'' if epochs == 1 else 's'})"


def protocol_epochs(label: str) -> int | None:
    """The epochs in a protocol's display name ("LP-FT (50 epochs)" -> 50), None when it names none."""
    match = re.search(r"\((\d+) epochs?\)$", label)
    return int(match[1]) if match else None


def loss_label(loss: str) -> str:
    """The paper's name of one of its losses ("trades" -> "TRADES"); any other loss keeps its registry name."""
    return paper_loss(loss) or loss


def accepted(mapping: dict[str, str]) -> str:
    """The accepted spellings, for error messages."""
    return ", ".join(f"'{v}'" for pair in mapping.items() for v in pair)


def protocol_order(protocols: list[str]) -> list[str]:
    """Paper protocols first in the paper's order (FFT-50, FFT-5, LP-50), then any others."""
    known = [p for p in PROTOCOL_NAMES.values() if p in protocols]
    return known + sorted(p for p in protocols if p not in known)


def size_order(sizes: list[str]) -> list[str]:
    known = [s for s in SIZE_CLASSES if s in sizes]
    return known + sorted(s for s in sizes if s not in known)

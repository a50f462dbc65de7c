"""Builders of hand-made results tables and run folders for the report tests."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from modules.vocabulary import ACCURACY_COLUMNS


def row(
    backbone: str, loss: str, dataset: str, accs: tuple[float, ...], protocol: str = "FFT (50 epochs)"
) -> dict[str, object]:
    """One results row with only the columns a CSV must have."""
    return dict(zip(ACCURACY_COLUMNS, accs)) | {
        "backbone": backbone,
        "dataset": dataset,
        "loss_function": loss,
        "ft_strategy": protocol,
    }


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    pd.DataFrame(rows).to_csv(path)
    return path


def write_run(directory: Path, **fields: object) -> Path:
    """A run folder as the app writes it: <directory>/version_0/results.json."""
    run = {
        "status": "complete",
        "backbone": "convnext_tiny.fb_in1k",
        "dataset": "flowers-102",
        "loss": "trades",
        "protocol": "fft50",
        "clean_acc": 0.5,
        "Linf_acc": 0.2,
        "L2_acc": 0.3,
        "L1_acc": 0.1,
        "common_acc": 0.4,
        "wall_time_s": 12.0,
    } | fields
    path = directory / "version_0" / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({k: v for k, v in run.items() if v is not None}))
    return path

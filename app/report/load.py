"""Reading results: CSVs in the schema of `paper_results.csv` and the app's `results.json`.

A CSV is a published or curated table, so anything wrong in it is an error. A
`results.json` is one run of any loss, protocol, dataset and backbone; its protocol is named as
the paper names its own ("LP-FT (50 epochs)", `run_protocol`). A run that cannot be used
(unfinished, unreadable, missing figures) is skipped with a stated reason.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from modules.model.backbone_zoo import backbone_info, to_paper_name
from modules.runs import tripped_checks
from modules.vocabulary import (
    ACCURACY_COLUMNS,
    COST_COLUMNS,
    LOSS_NAMES,
    METADATA_COLUMNS,
    PAPER_COLUMNS,
    PROTOCOL_NAMES,
    REQUIRED_CSV_COLUMNS,
    ROW_KEY,
    UNKNOWN,
    accepted,
    loss_label,
    paper_loss,
    paper_protocol,
    protocol_label,
)

from .errors import ReportInputError

SOURCE = "source"  # extra column: the file a row came from
CHECKS = "checks"  # extra column: the run's measurements whose checks tripped (modules/evaluation/checks.py)
_TOLERANCE = 1e-6


@dataclass
class Skip:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.path}: {self.reason}"


@dataclass
class Loaded:
    """Rows from CSV files (`tables`) and from the app's runs (`runs`), both in the
    paper's columns plus `source`; `skipped` lists the runs that could not be used."""

    tables: pd.DataFrame
    runs: pd.DataFrame
    skipped: list[Skip] = field(default_factory=list)


def metadata(backbone: str) -> dict[str, object]:
    """The paper's metadata columns for a backbone; "unknown" outside the study's zoo."""
    info = backbone_info(backbone)
    if info is None:
        return {column: UNKNOWN for column in METADATA_COLUMNS}
    return {
        "model_size": info.size,
        "pre_training_dataset": info.pretraining_data,
        "pre_training_strategy": info.pretraining_strategy,
        "volume_pre_training_data": info.pretraining_volume,
        "backbone_name": info.short_name,
        "model_type": info.model_type,
    }


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=[*PAPER_COLUMNS, SOURCE])


def _finish(rows: pd.DataFrame) -> pd.DataFrame:
    """Add sum and geom, order the columns as the paper does (a run's cost columns after them)."""
    rows = rows.copy()
    rows["sum"] = rows[list(ACCURACY_COLUMNS)].sum(axis=1)
    rows["geom"] = rows[list(ACCURACY_COLUMNS)].prod(axis=1)
    extra = [column for column in (*COST_COLUMNS, CHECKS) if column in rows]
    return rows[[*PAPER_COLUMNS, SOURCE, *extra]].reset_index(drop=True)


def run_cost(run: dict) -> dict[str, object]:
    """The device and device-hours (fit + measurements) of a run that recorded its cost, else nothing."""
    cost = run.get("cost")
    if not isinstance(cost, dict) or not isinstance(cost.get("fit"), dict) or not isinstance(cost.get("test"), dict):
        return {}
    seconds = cost["fit"].get("fit_device_seconds", 0) + sum(
        cost["test"].get("measurement_device_seconds", {}).values()
    )
    return {"device": cost["fit"].get("device"), "device_hours": seconds / 3600}


def _check_fraction(path: Path, column: str, values: pd.Series) -> None:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values[numbers.isna() | (numbers < 0) | (numbers > 1)]
    if len(bad):
        value = bad.iloc[0]
        shown = "empty" if pd.isna(value) else repr(value.item() if hasattr(value, "item") else value)
        raise ReportInputError(
            f"{path}: column '{column}' row {bad.index[0]} is {shown}; expected an accuracy fraction in [0, 1]"
        )


def read_csv(path: Path) -> pd.DataFrame:
    """A results table in the paper's schema (its unnamed index column is ignored)."""
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ReportInputError(f"{path}: not a readable CSV ({error})") from None
    table = table.loc[:, [not str(c).startswith("Unnamed:") for c in table.columns]]
    missing = [c for c in REQUIRED_CSV_COLUMNS if c not in table.columns]
    if missing:
        raise ReportInputError(
            f"{path}: missing column(s) {', '.join(missing)}; expected the columns of paper_results.csv"
        )
    for column in ("backbone", "dataset"):
        empty = table[column].isna()
        if empty.any():
            raise ReportInputError(f"{path}: column '{column}' is empty in row {table.index[empty][0]}")
    for column, canonical, mapping in (
        ("ft_strategy", paper_protocol, PROTOCOL_NAMES),
        ("loss_function", paper_loss, LOSS_NAMES),
    ):
        names = table[column].map(canonical)
        unknown = table.loc[names.isna(), column]
        if len(unknown):
            raise ReportInputError(
                f"{path}: column '{column}' has unknown value {unknown.iloc[0]!r} (row {unknown.index[0]}); "
                f"expected one of {accepted(mapping)}"
            )
        table[column] = names
    for column in ACCURACY_COLUMNS:
        _check_fraction(path, column, table[column])
        table[column] = table[column].astype(float)
    for column, combine in (("sum", "sum"), ("geom", "prod")):
        if column in table.columns:
            expected = getattr(table[list(ACCURACY_COLUMNS)], combine)(axis=1)
            off = (pd.to_numeric(table[column], errors="coerce") - expected).abs() > _TOLERANCE
            if off.any():
                raise ReportInputError(
                    f"{path}: column '{column}' in row {table.index[off][0]} is not the {combine} of the "
                    f"five accuracies; are columns swapped?"
                )
    table["backbone"] = table["backbone"].map(to_paper_name)
    for column in METADATA_COLUMNS:
        zoo = table["backbone"].map(lambda b, c=column: metadata(b)[c])
        table[column] = table[column].fillna(zoo) if column in table.columns else zoo
    table[SOURCE] = str(path)
    return _finish(table)


def run_protocol(run: dict) -> str:
    """A run's protocol by its adaptation and epochs ("LP-FT (50 epochs)"); for a results.json
    without them, its `protocol`: a study name ("fft50"), `<adaptation>-<epochs>ep`, or as it is."""
    adaptation, epochs = run.get("adaptation"), run.get("epochs")
    if isinstance(adaptation, str) and isinstance(epochs, int) and not isinstance(epochs, bool):
        return protocol_label(adaptation, epochs)
    named = paper_protocol(run["protocol"])
    if named is not None:
        return named
    match = re.fullmatch(r"(.+)-(\d+)ep", run["protocol"])
    return protocol_label(match[1], int(match[2])) if match else run["protocol"]


def read_run(path: Path) -> dict[str, object] | Skip:
    """One row from a run's results.json, or the reason it cannot be ranked."""
    try:
        run = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return Skip(str(path), f"not readable JSON ({error}); is the run still writing it?")
    if not isinstance(run, dict):
        return Skip(str(path), "not a JSON object")
    status = run.get("status")
    if status != "complete":
        return Skip(str(path), f"unfinished run: status is {status!r}, not 'complete'")
    absent = [k for k in ("backbone", "dataset", "loss", "protocol") if not isinstance(run.get(k), str)]
    if absent:
        return Skip(str(path), f"missing {', '.join(absent)}")
    row: dict[str, object] = {}
    for column in ACCURACY_COLUMNS:
        value = run.get(column)
        if value is None:
            return Skip(str(path), f"partial run: {column} is missing, so the run cannot be ranked")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or not 0 <= value <= 1:
            return Skip(str(path), f"{column} is {value!r}; expected an accuracy fraction in [0, 1]")
        row[column] = float(value)
    backbone = to_paper_name(run["backbone"])
    return (
        row
        | metadata(backbone)
        | {
            "backbone": backbone,
            "dataset": run["dataset"],
            "loss_function": loss_label(run["loss"]),
            "ft_strategy": run_protocol(run),
            SOURCE: str(path),
            CHECKS: tripped_checks(run),
        }
        | run_cost(run)
    )


def _expand(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(CSV files, results.json files); a directory is searched for results.json."""
    csvs: list[Path] = []
    runs: list[Path] = []
    for path in paths:
        if path.is_dir():
            # a sweep's folder (its ledger beside the cells): the cells' final runs, not the search's trials
            found = sorted(
                path.rglob("final/results.json") if (path / "sweep.csv").is_file() else path.rglob("results.json")
            )
            if not found:
                raise ReportInputError(f"{path}: no results.json under this directory")
            runs += found
        elif not path.exists():
            raise ReportInputError(f"{path}: no such file or directory")
        elif path.suffix.lower() == ".csv":
            csvs.append(path)
        elif path.suffix.lower() == ".json":
            runs.append(path)
        else:
            raise ReportInputError(f"{path}: expected a .csv table, a results.json or a run directory")
    return csvs, runs


def _check_unique(rows: pd.DataFrame, what: str) -> None:
    duplicated = rows[rows.duplicated(ROW_KEY, keep=False)]
    if len(duplicated):
        first = duplicated.iloc[0]
        same = duplicated[(duplicated[ROW_KEY] == first[ROW_KEY]).all(axis=1)]
        key = ", ".join(f"{k}={first[k]!r}" for k in ROW_KEY)
        raise ReportInputError(
            f"two {what} for the same configuration ({key}) in {' and '.join(sorted(set(same[SOURCE])))}; "
            f"expected one result per (backbone, dataset, loss, protocol)"
        )


def load_results(paths: list[str | Path]) -> Loaded:
    csvs, run_files = _expand([Path(p) for p in paths])
    tables = pd.concat([read_csv(p) for p in csvs], ignore_index=True) if csvs else _empty()
    rows, skipped = [], []
    for path in run_files:
        row = read_run(path)
        (skipped if isinstance(row, Skip) else rows).append(row)
    runs = _finish(pd.DataFrame(rows)) if rows else _empty()
    _check_unique(tables, "table rows")
    _check_unique(runs, "runs")
    if len(tables) and len(runs):
        _check_unique(pd.concat([tables, runs], ignore_index=True), "results (a table row and a run)")
    return Loaded(tables, runs, skipped)

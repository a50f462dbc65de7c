"""The cells of a sweep: one (protocol, dataset, backbone, loss[, further axes]) each, its stable
folder, and the `app fit` arguments of its runs."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.sweep.spec import AXES, Sweep
from modules.registry import ConfigError


@dataclass(frozen=True)
class Cell:
    protocol: str
    dataset: str
    backbone: str
    loss: str
    extra: tuple[tuple[str, Any], ...] = ()  # (dotted option, value) of the further axes

    def value(self, axis: str) -> Any:
        return getattr(self, axis) if axis in AXES else dict(self.extra)[axis]

    def folder(self, out: Path) -> Path:
        """`<out>/<protocol>/<dataset>/<backbone>/<loss>[/<option>=<value>...]`, the same on every run (a
        shared backbone's `:` and `/` spelled `--`: `hf-hub:org/name` -> `hf-hub--org--name`)."""
        return Path(
            out,
            self.protocol,
            self.dataset,
            re.sub(r"[:/\\]+", "--", self.backbone).strip("-"),
            self.loss,
            *(f"{option}={value}" for option, value in self.extra),
        )

    def key(self) -> dict[str, Any]:
        return {axis: self.value(axis) for axis in AXES} | dict(self.extra)

    def axes(self) -> dict[str, str]:
        """The key as strings (TensorBoard's HParams and Tune's records take them so)."""
        return {key: str(value) for key, value in self.key().items()}

    def name(self) -> str:
        """`protocol/dataset/backbone/loss[/option=value...]`, as the progress lines show it."""
        return "/".join([*(str(self.value(axis)) for axis in AXES), *(f"{o}={v}" for o, v in self.extra)])

    def id(self) -> str:
        """A short stable identifier, unique within a sweep: the name of the cell's Ray actor, Tune
        trainable and experiment (Tune keys its registry and staging folders by such names)."""
        return hashlib.sha1(self.name().encode()).hexdigest()[:12]


def cells(sweep: Sweep) -> list[Cell]:
    """Every cell of the grid, in a fixed order (protocols as listed, then datasets, backbones, losses)."""
    grid = itertools.product(
        sweep.protocols, sweep.datasets, sweep.backbones, sweep.losses, itertools.product(*sweep.axes.values())
    )
    return [Cell(p, d, b, lo, tuple(zip(sweep.axes, extra))) for p, d, b, lo, extra in grid]


def only(selected: list[Cell], filters: list[str], sweep: Sweep) -> list[Cell]:
    """`--only KEY=V1,V2`: the cells whose KEY is one of the values (several filters: all hold)."""
    axes = [*AXES, *sweep.axes]
    for text in filters:
        key, sep, values = text.partition("=")
        if not sep or not values:
            raise ConfigError(f"--only {text!r}: expected KEY=V1,V2 with KEY one of {', '.join(axes)}")
        if key not in axes:
            raise ConfigError(f"--only {text!r}: unknown axis {key!r}; expected one of {', '.join(axes)}")
        wanted = set(values.split(","))
        choices = [str(v) for v in axis_values(sweep, key)]
        unknown = sorted(wanted - set(choices))
        if unknown:
            raise ConfigError(
                f"--only {text!r}: {', '.join(unknown)} not among the sweep's {key} values ({', '.join(choices)})"
            )
        selected = [cell for cell in selected if str(cell.value(key)) in wanted]
    return selected


def axis_values(sweep: Sweep, axis: str) -> tuple:
    named = {
        "protocol": tuple(sweep.protocols),
        "dataset": sweep.datasets,
        "backbone": sweep.backbones,
        "loss": sweep.losses,
    }
    return named[axis] if axis in named else sweep.axes[axis]


def shard(selected: list[Cell], text: str | None) -> list[Cell]:
    """`--shard I/N` (I from 0 to N-1): every N-th cell from the I-th; N shards partition the cells."""
    if text is None:
        return selected
    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise ConfigError(f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/4")
    return selected[int(index) :: int(count)]


def option(key: str, value: Any) -> list[str]:
    """One `--key value` pair as the CLI takes it (strings as they are, the rest as JSON)."""
    return [f"--{key}", value if isinstance(value, str) else json.dumps(value)]


def fit_args(sweep: Sweep, cell: Cell, values: dict[str, Any] | None = None) -> list[str]:
    """`app fit` arguments of a run of `cell`: the protocol's configs and overrides, the cell's
    axes, the sweep's overrides, then the hyper-parameters `values` (dotted option -> value)."""
    protocol = sweep.protocols[cell.protocol]
    args = ["fit", *itertools.chain.from_iterable(("--config", str(c)) for c in protocol.configs)]
    args += ["--data", cell.dataset]
    if cell.dataset in sweep.data_roots:
        args += option("data.init_args.root", str(sweep.data_roots[cell.dataset]))
    args += option("model.backbone", cell.backbone) + option("model.loss", cell.loss)
    if cell.backbone in sweep.weights:
        args += option("model.weights", str(sweep.weights[cell.backbone]))
    for key, value in [*protocol.overrides.items(), *sweep.overrides.items(), *cell.extra, *(values or {}).items()]:
        args += option(key, value)
    return args

"""A sweep file: the grid of cells (protocols x datasets x backbones x losses x further axes), the
overrides every run gets, the data roots, the resources of a run, and the hyper-parameter search.

Every name is checked when the file is read, so that a typo is one line before Ray starts.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.config_files import composed
from modules.registry import ConfigError

AXES = ("protocol", "dataset", "backbone", "loss")  # the study's axes, in folder order
SEARCH_KINDS = ("loguniform", "uniform", "choice")
ALGORITHMS = ("random", "tpe")


@dataclass(frozen=True)
class Protocol:
    """A value of the protocol axis: the config files and overrides that make it, and the name of
    its search space (full fine-tuning tunes both parameter groups, linear probing the head)."""

    name: str
    configs: tuple[Path, ...]
    overrides: dict[str, Any]
    space: str
    epochs: int  # ASHA's max_t


@dataclass(frozen=True)
class Search:
    metric: str = "robust_loss"
    mode: str = "min"
    num_samples: int = -1  # unbounded within the time budget
    time_budget_minutes: float = 140.0  # per cell, of one run's devices, times concurrent_trials
    concurrent_trials: int = 1  # trials of a cell at once (the authors': one)
    algorithm: str = "random"
    grace_period: int = 1
    reduction_factor: int = 2
    spaces: dict[str, dict[str, tuple]] = field(default_factory=dict)  # space name -> option -> (kind, *args)

    def budget_device_seconds(self, devices: float) -> float:
        """A cell's search budget: `time_budget_minutes` of a run's devices for each concurrent trial,
        counted from the trials' own time (not time spent queued for a device)."""
        return self.time_budget_minutes * 60 * devices * self.concurrent_trials


@dataclass(frozen=True)
class Sweep:
    path: Path
    protocols: dict[str, Protocol]
    datasets: tuple[str, ...]
    backbones: tuple[str, ...]
    losses: tuple[str, ...]
    axes: dict[str, tuple]  # further axes: dotted option -> values
    overrides: dict[str, Any]  # every run
    data_roots: dict[str, Path]
    weights: dict[str, Path]  # backbone -> its local checkpoint (the robust_* backbones)
    resources: dict[str, float]
    search: Search


def _fail(path: Path, message: str) -> ConfigError:
    return ConfigError(f"sweep file {path}: {message}")


def _list(path: Path, raw: dict, key: str) -> tuple:
    values = raw.get(key)
    if not isinstance(values, list) or not values:
        raise _fail(path, f"'{key}' must be a non-empty list")
    return tuple(values)


def _nested(config: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        config = config.get(part) if isinstance(config, dict) else None
    return config


def setting(dotted: str, overrides: list[dict[str, Any]], configs: tuple[Path, ...]) -> Any:
    """The value a run gets for a dotted option (`trainer.max_epochs`, `model.init_args.pretrained`):
    the first of `overrides` (dotted keys; `model.x` means `model.init_args.x`) that sets it, else
    the last config file that does; None when nothing does."""
    short = dotted.replace(".init_args.", ".", 1)
    for mapping in overrides:
        for key in (dotted, short):
            if key in mapping:
                return mapping[key]
    for file in reversed([file for config in configs for file in composed(config)]):
        value = _nested(yaml.safe_load(file.read_text()) or {}, dotted)
        if value is not None:
            return value
    return None


def _protocols(path: Path, raw: dict, root: Path) -> dict[str, Protocol]:
    entries = raw.get("protocols")
    if not isinstance(entries, dict) or not entries:
        raise _fail(path, "'protocols' must map protocol names to {configs, set, space}")
    protocols = {}
    for name, entry in entries.items():
        unknown = set(entry) - {"configs", "set", "space"}
        if unknown:
            raise _fail(
                path, f"protocol {name!r}: unknown key(s) {', '.join(sorted(unknown))}; expected configs, set, space"
            )
        configs = tuple((root / c).resolve() for c in entry.get("configs", []))
        missing = [str(c) for c in configs if not c.is_file()]
        if not configs or missing:
            raise _fail(path, f"protocol {name!r}: config file(s) not found: {', '.join(missing) or '(none given)'}")
        overrides = dict(entry.get("set") or {})
        epochs = setting("trainer.max_epochs", [dict(raw.get("set") or {}), overrides], configs)
        if epochs is None:
            raise _fail(path, f"protocol {name!r}: no trainer.max_epochs in its configs or overrides (ASHA's max_t)")
        protocols[str(name)] = Protocol(str(name), configs, overrides, str(entry.get("space", "")), int(epochs))
    return protocols


def _model_options() -> set[str]:
    from modules.model.robust_finetune import RobustFineTuneModule

    return set(inspect.signature(RobustFineTuneModule).parameters)


def _search(path: Path, raw: dict, protocols: dict[str, Protocol]) -> Search:
    block = raw.get("search") or {}
    known = {
        "metric",
        "mode",
        "num_samples",
        "time_budget_minutes",
        "concurrent_trials",
        "algorithm",
        "scheduler",
        "space",
    }
    if set(block) - known:
        raise _fail(
            path, f"search: unknown key(s) {', '.join(sorted(set(block) - known))}; expected {', '.join(sorted(known))}"
        )
    scheduler = block.get("scheduler") or {}
    if scheduler.get("type", "asha") != "asha":
        raise _fail(path, f"search.scheduler.type {scheduler.get('type')!r}: only asha is supported")
    if block.get("algorithm", "random") not in ALGORITHMS:
        raise _fail(path, f"search.algorithm {block.get('algorithm')!r}; expected one of {', '.join(ALGORITHMS)}")
    if block.get("mode", "min") not in ("min", "max"):
        raise _fail(path, f"search.mode {block.get('mode')!r}; expected min or max")
    concurrent = block.get("concurrent_trials", 1)
    if isinstance(concurrent, bool) or not isinstance(concurrent, int) or concurrent < 1:
        raise _fail(
            path,
            f"search.concurrent_trials {concurrent!r}: expected an integer >= 1 "
            "(a cell's trials at once; 1 is the authors' one trial at a time)",
        )
    budget = block.get("time_budget_minutes", 140)
    if isinstance(budget, bool) or not isinstance(budget, int | float) or budget <= 0:
        raise _fail(path, f"search.time_budget_minutes {budget!r}: expected a number of minutes > 0")
    options = _model_options()
    spaces: dict[str, dict[str, tuple]] = {}
    for name, space in (block.get("space") or {}).items():
        spaces[name] = {}
        for option, definition in space.items():
            parameter = option.removeprefix("model.")
            if not option.startswith("model.") or parameter.split(".")[0] not in options:
                raise _fail(
                    path,
                    f"search.space.{name}: unknown search parameter {option!r}; expected model.<option> "
                    f"with an option of RobustFineTuneModule ({', '.join(sorted(options))})",
                )
            if not isinstance(definition, list) or not definition or definition[0] not in SEARCH_KINDS:
                raise _fail(
                    path,
                    f"search.space.{name}.{option}: expected [loguniform, low, high], [uniform, low, "
                    f"high] or [choice, [values...]], got {definition!r}",
                )
            spaces[name][option] = tuple(definition)
    for protocol in protocols.values():
        if protocol.space not in spaces and spaces:
            raise _fail(
                path,
                f"protocol {protocol.name!r} names search space {protocol.space!r}, which search.space "
                f"lacks (it has {', '.join(spaces)})",
            )
    return Search(
        metric=str(block.get("metric", "robust_loss")),
        mode=block.get("mode", "min"),
        num_samples=int(block.get("num_samples", -1)),
        time_budget_minutes=float(budget),
        concurrent_trials=concurrent,
        algorithm=block.get("algorithm", "random"),
        grace_period=int(scheduler.get("grace_period", 1)),
        reduction_factor=int(scheduler.get("reduction_factor", 2)),
        spaces=spaces,
    )


def _check_names(path: Path, sweep_axes: dict[str, tuple]) -> None:
    """Every dataset, backbone and loss exists (the registries' messages list the valid ones)."""
    import datamodules  # noqa: F401  (registers the datasets)
    from datamodules.registry import DATAMODULES
    from modules.model.backbones import resolve_timm_name
    from modules.model.losses import LOSSES

    for axis, check in (("datasets", DATAMODULES.get), ("backbones", resolve_timm_name), ("losses", LOSSES.get)):
        for value in sweep_axes[axis]:
            try:
                check(value)
            except ConfigError as error:
                raise _fail(path, f"{axis}: {error}") from None


def _resources(path: Path, raw: dict) -> dict[str, float]:
    """A run's share of a node: CPUs and GPUs, numbers >= 0, not both zero."""
    if not isinstance(raw, dict) or set(raw) - {"cpu", "gpu"}:
        raise _fail(path, f"resources {raw!r}: expected a mapping with keys among cpu, gpu")
    bad = {k: v for k, v in raw.items() if isinstance(v, bool) or not isinstance(v, int | float) or v < 0}
    if bad or (raw and not any(raw.values())):
        raise _fail(path, f"resources {raw!r}: expected numbers >= 0 for cpu and gpu, at least one of them > 0")
    return {str(k): float(v) for k, v in raw.items()}


def read_sweep(path: str | Path) -> Sweep:
    """Parse and check a sweep file; paths in it are relative to the project root (its configs/)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"sweep file {path} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    known = {
        "protocols",
        "datasets",
        "backbones",
        "losses",
        "axes",
        "set",
        "data_roots",
        "weights",
        "resources",
        "search",
    }
    if set(raw) - known:
        raise _fail(path, f"unknown key(s) {', '.join(sorted(set(raw) - known))}; expected {', '.join(sorted(known))}")
    root = project_root(path)
    protocols = _protocols(path, raw, root)
    named = {key: tuple(str(v) for v in _list(path, raw, key)) for key in ("datasets", "backbones", "losses")}
    _check_names(path, named)
    axes = {str(k): tuple(v) for k, v in (raw.get("axes") or {}).items()}
    if any(not isinstance(values, tuple) or not values for values in axes.values()):
        raise _fail(path, "'axes' must map dotted options to non-empty lists of values")
    resources = _resources(path, raw.get("resources") or {})
    weights = {str(k): Path(v).expanduser().resolve() for k, v in (raw.get("weights") or {}).items()}
    stray = sorted(set(weights) - set(named["backbones"]))
    if stray:
        raise _fail(path, f"weights: {', '.join(stray)} not among the sweep's backbones")
    return Sweep(
        path,
        protocols,
        named["datasets"],
        named["backbones"],
        named["losses"],
        axes,
        dict(raw.get("set") or {}),
        {str(k): Path(v).expanduser().resolve() for k, v in (raw.get("data_roots") or {}).items()},
        weights,
        resources,
        _search(path, raw, protocols),
    )


def project_root(path: Path) -> Path:
    """The folder a sweep file's relative paths start from: the one holding `configs/` above it."""
    for folder in path.parents:
        if (folder / "configs").is_dir():
            return folder
    return path.parent

"""Pretrained backbone weights in the local Hugging Face cache, for machines without network.

    python -m app weights status [NAME ...] [--json]        what the cache holds (no network)
    python -m app weights fetch (NAME ... | --all) [--json]  download what is missing, check each file loads

Compute nodes are often offline: run `fetch` where there is network (a login node) before the
jobs start; both see the same cache when they share HF_HOME (default ~/.cache/huggingface).
NAME is a study backbone (`python -m app backbones`; paper names work too), any timm name, or a
shared model: `hf-hub:ORG/NAME` (cached like the others) or `local-dir:DIR` (checked where it is).
The five robust_* backbones are not on the hub: they take a local file (--model.weights).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from modules.registry import ConfigError


@dataclass
class Entry:
    name: str
    state: str  # cached | fetched | missing | failed | local file | local dir | timm url
    source: str  # the hub repository (and files), or what else provides the weights
    path: str | None = None
    megabytes: float | None = None
    loads: bool | None = None  # fetch only: whether timm builds the model from the file
    error: str | None = None  # why the fetch or the load failed

    @property
    def failed(self) -> bool:
        return self.error is not None

    def line(self) -> str:
        size = f"{self.megabytes:8.1f} MB" if self.megabytes is not None else " " * 11
        note = f"  ({self.error})" if self.error else "  (loads)" if self.loads else ""
        return f"{self.state:<10} {self.name:<50} {size}  {self.path or self.source}{note}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m app weights", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("action", choices=["status", "fetch"])
    p.add_argument("names", nargs="*", metavar="NAME", help="backbones (default for status: the study's 40)")
    p.add_argument("--all", action="store_true", help="every study backbone")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per backbone")
    return p


def inspect(name: str, fetch: bool) -> Entry:
    """One backbone: where its weights are, fetched and load-checked when `fetch`."""
    from modules.model.backbone_zoo import backbone_info
    from modules.model.backbones import resolve_timm_name
    from modules.model.pretrained import WeightsUnavailable, cached_file, download, hub_weights
    from modules.model.shared import shared_model

    timm_name = resolve_timm_name(name)
    info = backbone_info(name)
    if shared_model(name) is not None:
        return inspect_shared(name, fetch)
    if info is not None and info.checkpoint_format:
        return Entry(name, "local file", f"--model.weights FILE ({info.checkpoint_format} format checkpoint)")
    weights = hub_weights(timm_name)
    if weights is None:
        return Entry(name, "timm url", f"{timm_name}: timm downloads it itself (not from the hub)")
    entry = Entry(name, "cached", weights.describe())
    path = cached_file(weights)
    if path is None and fetch:
        try:
            path, entry.state = download(weights), "fetched"
        except WeightsUnavailable as error:
            entry.state, entry.error = "failed", str(error)
            return entry
    if path is None:
        entry.state = "missing"
        return entry
    entry.path, entry.megabytes = str(path), round(Path(path).stat().st_size / 2**20, 1)
    if fetch:
        entry.error = load_error(timm_name, {"pretrained_cfg_overlay": {"file": str(path)}})
        entry.loads = entry.error is None
    return entry


def inspect_shared(name: str, fetch: bool) -> Entry:
    """A model folder (`local-dir:DIR`) or hub repository (`hf-hub:ORG/NAME`): its config.json and weights."""
    from modules.model.pretrained import WeightsUnavailable
    from modules.model.shared import CONFIG_FILE, WEIGHT_FILES, cached, model_folder, shared_model

    shared = shared_model(name)
    local = shared.source == "local-dir"
    entry = Entry(
        name, "local dir" if local else "cached", f"{shared.location}: {CONFIG_FILE} + {' or '.join(WEIGHT_FILES)}"
    )
    path = None if local else cached(shared)
    if local or (path is None and fetch):
        try:
            folder = model_folder(shared, weights=True)
        except (WeightsUnavailable, ConfigError) as error:
            entry.state, entry.error = "failed", str(error)
            return entry
        path = next(folder / file for file in WEIGHT_FILES if (folder / file).is_file())
        entry.state = "local dir" if local else "fetched"
    if path is None:
        entry.state = "missing"
        return entry
    entry.path, entry.megabytes = str(path), round(Path(path).stat().st_size / 2**20, 1)
    if fetch:
        entry.error = load_error(f"local-dir:{Path(path).parent}", {})
        entry.loads = entry.error is None
    return entry


def load_error(timm_name: str, options: dict) -> str | None:
    """Build the timm model from the file: timm's strict load says whether every weight fits."""
    import timm

    from modules.registry import first_line

    try:
        timm.create_model(timm_name, pretrained=True, **options)
    except Exception as error:  # a truncated file, wrong keys or shapes
        return f"does not load: {first_line(error)}"
    return None


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from modules.model.backbone_zoo import BACKBONES

    names = list(BACKBONES) if args.all or (args.action == "status" and not args.names) else args.names
    if not names:
        print("error: weights fetch needs backbone names or --all", file=sys.stderr)
        return 2
    from modules.model.backbones import resolve_timm_name

    try:
        for name in names:
            resolve_timm_name(name)  # every name checked before any download
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    entries = []
    for name in names:
        entries.append(inspect(name, fetch=args.action == "fetch"))
        if not args.json:
            print(entries[-1].line(), flush=True)
    if args.json:
        print(json.dumps([asdict(entry) for entry in entries], indent=2))
    missing = [entry.name for entry in entries if entry.state == "missing"]
    if missing and not args.json:
        from modules.model.pretrained import cache_dir

        print(f"{len(missing)} not in the cache {cache_dir()}: python -m app weights fetch {' '.join(missing)}")
    return 1 if any(entry.failed for entry in entries) else 0

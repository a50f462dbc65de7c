"""Backbones shared as timm / Hugging Face model folders, named as timm names them:

- `hf-hub:ORG/NAME[@REVISION]`: a repository on the Hugging Face hub, read from the local cache
  first (no network when it is there), fetched once otherwise, one line when neither works
  (the study's own pretrained weights are read the same way, `modules.model.pretrained`);
- `local-dir:DIR`: a folder on disk, e.g. one written by `python -m app export`.

A model folder holds `config.json` (the timm architecture, `num_classes`, `label_names`, and
`pretrained_cfg` with the mean, std and input size the weights expect) and the weights,
`model.safetensors` (or `pytorch_model.bin`). timm builds the model from it
(`timm.create_model("local-dir:DIR", pretrained=True)`); a hub model is built from its
snapshot folder in the cache the same way, so that timm itself never goes to the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modules.model.pretrained import HubWeights, cached_file, local_file
from modules.registry import ConfigError, first_line

SOURCES = ("hf-hub", "local-dir")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # timm's order of preference
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class SharedModel:
    name: str  # as the user gave it: `hf-hub:ORG/NAME` or `local-dir:DIR`
    source: str  # one of SOURCES
    location: str  # the repository id (ORG/NAME, optionally @REVISION) or the folder

    def hub_files(self, files: tuple[str, ...]) -> HubWeights:
        repo_id, _, revision = self.location.partition("@")
        return HubWeights(repo_id, files, revision or None)


def shared_model(name: str) -> SharedModel | None:
    """`name` as a shared model, or None for a timm registry name (no source prefix)."""
    source, separator, location = name.partition(":")
    if not separator or source not in SOURCES:
        return None
    if not location.strip():
        raise ConfigError(f"backbone {name!r}: nothing after {source}: (expected {source}:{example(source)})")
    return SharedModel(name, source, location.strip())


def example(source: str) -> str:
    return "ORG/NAME" if source == "hf-hub" else "DIR"


def local_folder(model: SharedModel) -> Path:
    """A `local-dir:` folder, checked: it exists and holds a config.json."""
    folder = Path(model.location).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"backbone {model.name!r}: folder {folder} not found")
    if not (folder / CONFIG_FILE).is_file():
        raise ConfigError(
            f"backbone {model.name!r}: {folder} has no {CONFIG_FILE}, so it is not a timm / Hugging Face model "
            "folder (config.json + model.safetensors; `python -m app export` writes one)"
        )
    return folder


def model_folder(model: SharedModel, weights: bool = True) -> Path:
    """A local folder with the model's config.json and, when `weights`, its weights file: the
    `local-dir:` folder itself, or the hub repository's snapshot in the local cache (fetched when
    missing and the hub answers)."""
    if model.source == "local-dir":
        folder = local_folder(model)
        if weights and not any((folder / name).is_file() for name in WEIGHT_FILES):
            raise ConfigError(f"backbone {model.name!r}: {folder} has no weights ({' or '.join(WEIGHT_FILES)})")
        return folder
    config = local_file(f"the model {model.name!r}", model.hub_files((CONFIG_FILE,)), model.name)
    if weights:
        local_file(f"the weights of {model.name!r}", model.hub_files(WEIGHT_FILES), model.name)
    return config.parent  # the snapshot folder: every file of one revision sits there


def cached(model: SharedModel) -> Path | None:
    """The hub model's weights file in the local cache (no network), if both it and config.json are there."""
    if cached_file(model.hub_files((CONFIG_FILE,))) is None:
        return None
    return cached_file(model.hub_files(WEIGHT_FILES))


def read_config(model: SharedModel) -> dict[str, Any]:
    """The model folder's config.json, checked for what timm needs (the architecture)."""
    path = model_folder(model, weights=False) / CONFIG_FILE
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"backbone {model.name!r}: cannot read {path}: {first_line(error)}") from error
    if not isinstance(config, dict) or not isinstance(config.get("architecture"), str):
        raise ConfigError(f"backbone {model.name!r}: {path} names no timm `architecture`")
    return config


def head_classes(config: dict[str, Any]) -> int | None:
    """The number of classes the folder's head was saved with."""
    found = config.get("num_classes", config.get("pretrained_cfg", {}).get("num_classes"))
    return int(found) if found is not None else None


def timm_name(model: SharedModel, weights: bool) -> str:
    """What `timm.create_model` is given: always a local folder, so timm reads files, not the network."""
    return f"local-dir:{model_folder(model, weights)}"

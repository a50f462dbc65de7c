"""Loading backbone weights from a local file into a timm model, with a strict key check.

A checkpoint format is one entry of `CHECKPOINT_FORMATS`: a function that takes the loaded
file (whatever object `torch.load` returns) and the timm network, and returns a state dict in
timm's key names. `load_backbone_weights` then checks that every backbone weight is there.

- `timm`: a plain state dict, possibly nested under `state_dict` / `model` and prefixed `module.`.
- `madry`: the Madry lab `robustness` library's ImageNet checkpoints:
  `{"model": {"module.model.<torchvision resnet keys>", "module.attacker.model.<same>",
  "module.normalizer.new_mean", ...}, "epoch": ...}`; the `module.model.` keys are kept.
- `revisiting`: Singh et al., "Revisiting Adversarial Training for ImageNet" (NeurIPS 2023,
  github nmndeep/revisiting-at): timm models saved as a flat state dict whose keys carry
  `module.` (DDP) and `base_model.` prefixes; with their `add_normalization` option the
  model is `Sequential(normalize, model)`, so keys are `model.<timm keys>` plus
  `normalize.mean/std`. ConvNeXt keys in the original Facebook naming are converted by timm's
  own checkpoint filter.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modules.registry import ConfigError, Registry, first_line

Remap = Callable[[Any, nn.Module], dict[str, torch.Tensor]]
CHECKPOINT_FORMATS: Registry[Remap] = Registry("checkpoint format")


def load_tensors(path: str | Path, missing: str, unreadable: str, mmap: bool = False) -> Any:
    """What a file the user named holds (`torch.load`, tensors only: `weights_only=True`), or one
    ConfigError from the `missing` or `unreadable` message (`{path}` is filled in). `mmap`: tensors
    stay on disk until used (a cheap check of a large file)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(missing.format(path=path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as error:  # truncated, not a torch file, or pickled objects: say which file
        raise ConfigError(f"{unreadable.format(path=path)}: {first_line(error)}") from error


def read_checkpoint(path: str | Path) -> Any:
    """The object a weights file holds."""
    return load_tensors(
        path,
        "weights file not found: {path}",
        "cannot read weights file {path} (truncated or not a PyTorch checkpoint?)",
    )


def unwrap(checkpoint: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, unwrapped from the usual nesting (`state_dict`, `model`, `module`)."""
    for key in ("state_dict", "model", "module"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    if not isinstance(checkpoint, dict):
        raise ConfigError(f"{source} holds a {type(checkpoint).__name__}, expected a state dict")
    return {key: value for key, value in checkpoint.items() if torch.is_tensor(value)}


def strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key.removeprefix(prefix): value for key, value in state.items()}


@CHECKPOINT_FORMATS.register("timm")
def timm_format(checkpoint: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    return strip_prefix(unwrap(checkpoint), "module.")


@CHECKPOINT_FORMATS.register("madry")
def madry_format(checkpoint: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    state = strip_prefix(unwrap(checkpoint), "module.")
    model = {key.removeprefix("model."): value for key, value in state.items() if key.startswith("model.")}
    if not model:
        raise ConfigError(
            "not a Madry `robustness` checkpoint: no `module.model.*` keys "
            f"(keys start with: {', '.join(sorted({k.split('.')[0] for k in state})[:10])})"
        )
    return model  # the attacker's copy and the normalizer are dropped


def timm_filter(state: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    """timm's own conversion of foreign key names for this architecture (e.g. Facebook ConvNeXt)."""
    module = importlib.import_module(type(net).__module__)
    convert = getattr(module, "checkpoint_filter_fn", None)
    if convert is None:
        return state
    try:
        return convert(dict(state), net)
    except (KeyError, RuntimeError, ValueError):  # not this architecture's names: the strict check reports them
        return state


@CHECKPOINT_FORMATS.register("revisiting")
def revisiting_format(checkpoint: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    state = unwrap(checkpoint)
    for prefix in ("module.", "base_model."):
        state = strip_prefix(state, prefix)
    if any(key.startswith("normalize.") for key in state) or all(key.startswith("model.") for key in state):
        state = {key.removeprefix("model."): value for key, value in state.items() if not key.startswith("normalize.")}
    state = strip_prefix(state, "base_model.")
    expected = net.state_dict().keys()
    if state and not set(state) & set(expected):  # original (non-timm) names: timm's converter
        state = timm_filter(state, net)
    return state


def read_state_dict(
    path: str | Path, checkpoint_format: str = "timm", net: nn.Module | None = None
) -> dict[str, torch.Tensor]:
    """The backbone state dict of a checkpoint file, in timm's key names for `checkpoint_format`."""
    remap = CHECKPOINT_FORMATS.get(checkpoint_format)
    checkpoint = read_checkpoint(path)
    try:
        return remap(checkpoint, net)
    except ConfigError as error:
        raise ConfigError(f"weights file {path} ({checkpoint_format} format): {error}") from error


def load_backbone_weights(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load every backbone weight of `net` from `state`; the classifier is new and is skipped.

    Any backbone key that is missing, unexpected, or of the wrong shape is an error that names it.
    """
    classifier = {
        f"{name}.{key}"
        for name, module in net.named_modules()
        if module is net.get_classifier()
        for key in module.state_dict()
    }
    expected = {key: value for key, value in net.state_dict().items() if key not in classifier}
    given = {key: value for key, value in state.items() if key not in classifier}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    mismatched = sorted(key for key in set(expected) & set(given) if expected[key].shape != given[key].shape)
    problems = [
        f"{label} keys: {', '.join(keys[:10])}{' ...' if len(keys) > 10 else ''} ({len(keys)})"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong-shape", mismatched))
        if keys
    ]
    if problems:
        raise ConfigError(f"weights in {source} do not fit {type(net).__name__}: " + "; ".join(problems))
    net.load_state_dict(given, strict=False)


def load_weights_file(net: nn.Module, path: str | Path, checkpoint_format: str = "timm") -> None:
    """Read `path` in `checkpoint_format` and load it into `net` with the strict backbone check."""
    load_backbone_weights(net, read_state_dict(path, checkpoint_format, net), f"{path} ({checkpoint_format} format)")

"""Loading backbone weights from a local file into a timm model, with a strict key check."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from modules.registry import ConfigError


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, unwrapped from the usual nesting (`state_dict`, `model`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"weights file not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated or not a torch file: say which file
        raise ConfigError(f"cannot read weights file {path}: {error}") from error
    for key in ("state_dict", "model", "module"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    if not isinstance(checkpoint, dict):
        raise ConfigError(f"weights file {path} holds a {type(checkpoint).__name__}, expected a state dict")
    return {key.removeprefix("module."): value for key, value in checkpoint.items() if torch.is_tensor(value)}


def load_backbone_weights(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load every backbone weight of `net` from `state`; the classifier is new and is skipped.

    Any backbone key that is missing, unexpected, or of the wrong shape is an error that names it.
    """
    classifier = {f"{name}.{key}" for name, module in net.named_modules() if module is net.get_classifier()
                  for key in module.state_dict()}
    expected = {key: value for key, value in net.state_dict().items() if key not in classifier}
    given = {key: value for key, value in state.items() if key not in classifier}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    mismatched = sorted(key for key in set(expected) & set(given) if expected[key].shape != given[key].shape)
    problems = [f"{label} keys: {', '.join(keys[:10])}{' ...' if len(keys) > 10 else ''} ({len(keys)})"
                for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong-shape", mismatched)) if keys]
    if problems:
        raise ConfigError(f"weights in {source} do not fit {type(net).__name__}: " + "; ".join(problems))
    net.load_state_dict(given, strict=False)

"""Export a fine-tuned model for use outside the app: a plain timm state dict plus metadata.

    state = safetensors.torch.load_file("model.safetensors")      # or torch.load("model.pt")
    meta = json.load(open("model.json"))
    net = timm.create_model(meta["timm_name"], num_classes=meta["num_classes"])
    net.load_state_dict(state)
    logits = net((images - mean) / std)   # images in [0, 1]; mean/std from meta, per channel

The metadata holds the timm name, num_classes, the normalization constants (the model
takes normalized images, as any timm model), the input size and, when known, the class names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from modules.model.checkpoints import load_tensors
from modules.registry import ConfigError

NET_PREFIX = "model.net."


def read_lightning_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """A checkpoint written by the app's `fit`, checked: readable and holding the module's weights
    and hyper-parameters. `mmap`: tensors stay on disk until used (a cheap check of a large file)."""
    checkpoint = load_tensors(
        path,
        "checkpoint {path} does not exist",
        "checkpoint {path} cannot be read (truncated or not a PyTorch checkpoint)",
        mmap,
    )
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or "backbone" not in hparams or "state_dict" not in checkpoint:
        raise ConfigError(
            f"checkpoint {path} was not written by `python -m app fit` (no RobustFineTuneModule "
            "weights and hyper-parameters)"
        )
    return checkpoint


def exported(
    checkpoint: dict[str, Any], class_names: list[str] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(timm state dict, metadata) of a RobustFineTuneModule checkpoint."""
    from modules.model.backbones import resolve_timm_name

    state = checkpoint["state_dict"]
    hparams = checkpoint["hyper_parameters"]
    net = {key.removeprefix(NET_PREFIX): value.clone() for key, value in state.items() if key.startswith(NET_PREFIX)}
    if not net or "model.mean" not in state or "model.std" not in state:
        raise ConfigError(
            "the checkpoint holds no `model.net.*` weights and `model.mean/std`: not a RobustFineTuneModule checkpoint"
        )
    backbone = hparams.get("backbone")
    class_names = class_names or checkpoint.get("class_names")
    metadata = {
        "timm_name": resolve_timm_name(backbone),
        "backbone": backbone,
        "num_classes": int(hparams["num_classes"]),
        "mean": [round(float(v), 8) for v in state["model.mean"].flatten()],
        "std": [round(float(v), 8) for v in state["model.std"].flatten()],
        "input_range": [0.0, 1.0],
        "class_names": list(class_names) if class_names else None,
        "loss": hparams.get("loss"),
        "protocol": hparams.get("protocol"),
        "epoch": checkpoint.get("epoch"),
    }
    return net, metadata


def metadata_path(out: str | Path) -> Path:
    return Path(out).with_suffix(".json")


def export_checkpoint(ckpt: str | Path, out: str | Path, class_names: list[str] | None = None) -> tuple[Path, Path]:
    """Write the timm state dict to `out` (.safetensors, or torch.save for any other suffix) and
    the metadata next to it (`out` with suffix .json). Returns both paths."""
    state, metadata = exported(read_lightning_checkpoint(ckpt), class_names)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.contiguous() for key, value in state.items()}
    if out.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(out))
    else:
        torch.save(state, out)
    meta = metadata_path(out)
    meta.write_text(json.dumps(metadata | {"weights": out.name}, indent=2) + "\n")
    return out, meta


def load_exported(path: str | Path) -> torch.nn.Module:
    """Rebuild an exported model with timm alone; it takes normalized images (see the module docstring)."""
    import timm

    path = Path(path)
    metadata = json.loads(metadata_path(path).read_text())
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = load_tensors(path, "exported weights {path} do not exist", "cannot read exported weights {path}")
    net = timm.create_model(metadata["timm_name"], pretrained=False, num_classes=metadata["num_classes"])
    net.load_state_dict(state)
    return net

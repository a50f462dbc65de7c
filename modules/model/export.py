"""Export a fine-tuned checkpoint as a timm / Hugging Face model folder:

    config.json        timm's: architecture, num_classes, label_names, pretrained_cfg (the mean, std
                       and input size the model was trained with; images resized, not cropped)
    model.safetensors  the timm network's weights, its head included
    results.json       the run's record, when its test measured these very weights
    README.md          the model card (modules/model/model_card.py): what the model is robust to

so that `timm.create_model("local-dir:DIR", pretrained=True)` (or `hf-hub:ORG/NAME` once pushed)
builds it in one line, `timm.data.resolve_data_config({}, model=net)` gives its preprocessing, and
`python -m app test --model.backbone local-dir:DIR --model.keep_head true` measures it again. The
folder is written next to its destination and renamed into place: never half a folder.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modules.model.checkpoints import load_tensors
from modules.registry import ConfigError
from modules.runs import public_mode, read_record, tested_in, write_json_atomic

NET_PREFIX = "model.net."
EXPORT_FILES = ("config.json", "model.safetensors", "results.json", "README.md")


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


@dataclass
class Exported:
    """A fine-tuned model as it leaves the app: the timm network and what the card says of it."""

    net: nn.Module  # timm's network, the checkpoint's weights loaded, in eval mode
    mean: list[float]
    std: list[float]
    image_size: int
    class_names: list[str] | None
    dataset: str
    hparams: dict[str, Any]  # the RobustFineTuneModule's
    epoch: int | None
    precision: str | None
    record: dict[str, Any] | None  # the run's results.json, when its test measured this checkpoint


def run_record(ckpt: Path) -> dict[str, Any] | None:
    """The results.json of the checkpoint's run, if its complete test measured this checkpoint."""
    if ckpt.parent.name != "checkpoints":
        return None
    record = read_record(ckpt.parent.parent)
    measured = record.get("status") == "complete" and tested_in(record) == str(ckpt.resolve())
    return record if measured else None


def trainer_precision(ckpt: Path) -> str | None:
    """The precision the run trained in, from its config.yaml (a checkpoint does not hold it)."""
    import yaml

    try:
        config = yaml.safe_load((ckpt.parent.parent / "config.yaml").read_text())
        return str(config["trainer"]["precision"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


def exported_model(ckpt: str | Path, class_names: list[str] | None = None) -> Exported:
    """The timm network of a RobustFineTuneModule checkpoint, and what is known about it."""
    ckpt = Path(ckpt)
    checkpoint = read_lightning_checkpoint(ckpt)
    state, hparams = checkpoint["state_dict"], checkpoint["hyper_parameters"]
    weights = {key.removeprefix(NET_PREFIX): value for key, value in state.items() if key.startswith(NET_PREFIX)}
    if not weights or "model.mean" not in state or "model.std" not in state:
        raise ConfigError(f"checkpoint {ckpt} holds no `model.net.*` weights and `model.mean/std`")
    from modules.model.backbones import create_classifier

    # the network the checkpoint was trained in, built as fit built it, from random weights (no download)
    net = create_classifier(hparams["backbone"], int(hparams["num_classes"]), pretrained=False).net
    net.load_state_dict(weights)
    record = run_record(ckpt)
    data = checkpoint.get("dataset") or {}
    data_hparams = checkpoint.get("datamodule_hyper_parameters") or {}
    image_size = data.get("image_size") or data_hparams.get("image_size") or net.pretrained_cfg["input_size"][-1]
    names = class_names or data.get("class_names") or None
    if names is not None and len(names) != net.num_classes:
        raise ConfigError(f"{len(names)} class names given for a model of {net.num_classes} classes")
    dataset = data.get("name") or (record or {}).get("dataset") or str(data_hparams.get("_class_path", "unknown"))
    precision = (record or {}).get("precision") or trainer_precision(ckpt)
    return Exported(
        net=net.eval(),
        mean=[float(v) for v in state["model.mean"].flatten()],
        std=[float(v) for v in state["model.std"].flatten()],
        image_size=int(image_size),
        class_names=list(names) if names else None,
        dataset=dataset,
        hparams=dict(hparams),
        epoch=checkpoint.get("epoch"),
        precision=precision,
        record=record,
    )


def check_destination(out: Path) -> None:
    """`out` must be new, empty, or an earlier export (which is replaced)."""
    if out.suffix in (".safetensors", ".pt", ".pth", ".bin", ".json"):
        raise ConfigError(
            f"--out {out}: give a folder, not a file; the export is a timm / Hugging Face model folder "
            f"({', '.join(EXPORT_FILES)})"
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder (new, empty, or an earlier export)")
    if out.is_dir():
        foreign = sorted(path.name for path in out.iterdir() if path.name not in EXPORT_FILES)
        if foreign:
            raise ConfigError(
                f"--out {out} exists and is not an export folder (it holds {', '.join(foreign[:5])}): "
                "give a new folder, an empty one, or an earlier export to replace"
            )


def export_folder(exported: Exported, out: str | Path, card: str) -> Path:
    """Write the model folder (config.json, model.safetensors, results.json, README.md = `card`) at `out`."""
    from timm.models import save_for_hf

    out = Path(out)
    check_destination(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    size = exported.image_size
    model_config = {"label_names": exported.class_names} if exported.class_names else {}
    with torch.no_grad():
        save_for_hf(
            exported.net,
            str(partial),
            model_config=model_config,
            safe_serialization=True,
            data_config={
                "input_size": (3, size, size),
                "mean": tuple(exported.mean),
                "std": tuple(exported.std),
                "interpolation": "bilinear",
                "crop_pct": 1.0,
                "crop_mode": "squash",  # the app resizes to size x size, it does not crop
            },
        )
    if exported.record is not None:
        write_json_atomic(partial / "results.json", exported.record)
    (partial / "README.md").write_text(card)
    for path in partial.iterdir():  # as readable as any file the user writes (safetensors writes 0600)
        path.chmod(public_mode(0o666))
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return out


def push_folder(folder: Path, repo_id: str) -> str:
    """Upload an export folder to the hub repository `repo_id` (created if new) with the user's token
    (as huggingface_hub finds it: HF_TOKEN, or `hf auth login`); its URL. Without network, one line
    within seconds, not a minute of retries."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.utils import get_session

    from modules.model.pretrained import PROBE_TIMEOUT
    from modules.registry import first_line

    later = f"the folder {folder} is written; push it later with `hf upload {repo_id} {folder}`"
    if constants.HF_HUB_OFFLINE:
        raise ConfigError(f"--push {repo_id}: HF_HUB_OFFLINE is set; {later}")
    try:
        get_session().head(constants.ENDPOINT, timeout=PROBE_TIMEOUT)
    except Exception as error:  # connection refused, DNS, timeout, proxy
        raise ConfigError(
            f"--push {repo_id}: the hub ({constants.ENDPOINT}) cannot be reached ({first_line(error)}); {later}"
        ) from error
    api = HfApi()
    try:
        url = api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(repo_id=url.repo_id, folder_path=str(folder), commit_message="Robust fine-tuned model")
    except Exception as error:  # no token, no rights, a rejected upload
        raise ConfigError(f"--push {repo_id}: {first_line(error)}; {later}") from error
    return str(url)

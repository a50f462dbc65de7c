"""Robust checkpoints: Madry-lab and Revisiting-AT files built from random models load bit for bit;
bad files give errors that name the keys."""

from __future__ import annotations

import re

import pytest
import timm
import torch

from modules.model.backbones import create_classifier
from modules.model.checkpoints import CHECKPOINT_FORMATS, load_weights_file, read_state_dict
from modules.registry import ConfigError

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def random_timm(architecture: str, seed: int = 1) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = timm.create_model(architecture, pretrained=False, num_classes=1000)
    with torch.no_grad():  # also randomize BatchNorm statistics and zero-initialised tensors
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor))
    return net


def madry_checkpoint(net: torch.nn.Module) -> dict:
    """The `robustness` library's layout: DataParallel(AttackerModel(normalizer, model, attacker))."""
    state = {}
    for key, value in net.state_dict().items():
        state[f"module.model.{key}"] = value.clone()
        state[f"module.attacker.model.{key}"] = value.clone()
    for owner in ("module.normalizer", "module.attacker.normalize"):
        state[f"{owner}.new_mean"] = torch.tensor(IMAGENET[0]).view(3, 1, 1)
        state[f"{owner}.new_std"] = torch.tensor(IMAGENET[1]).view(3, 1, 1)
    return {"model": state, "optimizer": {"state": {}, "param_groups": []}, "schedule": None, "epoch": 90}


def revisiting_checkpoint(net: torch.nn.Module, layout: str) -> dict:
    """Revisiting-AT's saved state dicts: DDP (`module.`) around the timm model, optionally inside
    `Sequential(normalize, model)` (their add_normalization option), or `base_model.` prefixed."""
    state = {key: value.clone() for key, value in net.state_dict().items()}
    if layout == "ddp":
        return {f"module.{key}": value for key, value in state.items()}
    if layout == "normalized":
        out = {f"module.model.{key}": value for key, value in state.items()}
        out["module.normalize.mean"] = torch.tensor(IMAGENET[0]).view(1, 3, 1, 1)
        out["module.normalize.std"] = torch.tensor(IMAGENET[1]).view(1, 3, 1, 1)
        return out
    if layout == "base_model":
        return {"model": {f"module.base_model.{key}": value for key, value in state.items()}}
    raise ValueError(layout)


def backbone_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    head = {
        f"{name}.{key}"
        for name, module in net.named_modules()
        if module is net.get_classifier()
        for key in module.state_dict()
    }
    return {key: value for key, value in net.state_dict().items() if key not in head}


def test_the_formats_are_a_registry():
    assert {"timm", "madry", "revisiting"} <= set(CHECKPOINT_FORMATS.names())


def test_madry_resnet50_round_trip(tmp_path, same_tensors):
    source = random_timm("resnet50")
    path = tmp_path / "imagenet_linf_4.pt"
    torch.save(madry_checkpoint(source), path)
    model = create_classifier("robust_resnet50", num_classes=7, weights=str(path))
    assert same_tensors(backbone_state(model.net), backbone_state(source)) == []
    assert model.net.get_classifier().out_features == 7
    assert tuple(model.mean.flatten().tolist()) == pytest.approx(IMAGENET[0])


REVISITING = [
    ("robust_convnext_tiny", "convnext_tiny", "ddp"),
    ("robust_deit_small_patch16_224", "deit_small_patch16_224", "normalized"),
    pytest.param("robust_convnext_tiny", "convnext_tiny", "base_model", marks=pytest.mark.slow),
    pytest.param("robust_convnext_base", "convnext_base", "ddp", marks=pytest.mark.slow),
    pytest.param("robust_vit_base_patch16_224", "vit_base_patch16_224", "normalized", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name, architecture, layout", REVISITING)
def test_revisiting_round_trip(tmp_path, same_tensors, name, architecture, layout):
    source = random_timm(architecture)
    path = tmp_path / "weights.pt"
    torch.save(revisiting_checkpoint(source, layout), path)
    model = create_classifier(name, num_classes=5, weights=str(path))
    assert same_tensors(backbone_state(model.net), backbone_state(source)) == []
    # the robust checkpoints were trained with ImageNet statistics, whatever timm's default tag says
    assert tuple(model.std.flatten().tolist()) == pytest.approx(IMAGENET[1])


def test_revisiting_facebook_convnext_names_are_converted(tmp_path, same_tensors):
    """ConvNeXt in the original Facebook naming (dwconv, downsample_layers, gamma) goes through timm's converter."""
    source = random_timm("convnext_tiny")
    fb = {}
    for key, value in source.state_dict().items():  # the inverse of timm's convnext checkpoint_filter_fn
        key = re.sub(r"^stem\.", "downsample_layers.0.", key)
        key = re.sub(r"stages\.(\d+)\.downsample\.(\d+)", r"downsample_layers.\1.\2", key)
        key = re.sub(r"stages\.(\d+)\.blocks\.(\d+)", r"stages.\1.\2", key)
        key = key.replace("conv_dw", "dwconv").replace("mlp.fc", "pwconv")
        key = key.replace("head.norm.", "norm.").replace("head.fc.", "head.")
        fb[key] = value.clone()
    assert "downsample_layers.1.1.weight" in fb and "stages.3.2.pwconv2.weight" in fb
    path = tmp_path / "fb.pt"
    torch.save({"model": {f"module.{k}": v for k, v in fb.items()}}, path)
    model = create_classifier("robust_convnext_tiny", num_classes=3, weights=str(path))
    assert same_tensors(backbone_state(model.net), backbone_state(source)) == []


def test_wrong_architecture_names_the_keys(tmp_path):
    path = tmp_path / "deit.pt"
    torch.save(revisiting_checkpoint(random_timm("deit_tiny_patch16_224"), "ddp"), path)
    with pytest.raises(ConfigError) as error:
        load_weights_file(timm.create_model("convnext_atto", num_classes=3), path, "revisiting")
    message = str(error.value)
    assert "missing keys: " in message and "stages.0.blocks.0.conv_dw.weight" in message
    assert "unexpected keys: " in message and "blocks.0.attn.qkv.weight" in message


def test_missing_keys_are_named(tmp_path):
    checkpoint = madry_checkpoint(random_timm("resnet50"))
    del checkpoint["model"]["module.model.layer4.2.bn3.running_var"]
    del checkpoint["model"]["module.model.conv1.weight"]
    path = tmp_path / "partial.pt"
    torch.save(checkpoint, path)
    with pytest.raises(ConfigError, match=r"missing keys: conv1.weight, layer4.2.bn3.running_var \(2\)"):
        create_classifier("robust_resnet50", num_classes=3, weights=str(path))


def test_wrong_shape_is_named(tmp_path):
    state = revisiting_checkpoint(random_timm("deit_tiny_patch16_224"), "ddp")
    state["module.pos_embed"] = torch.zeros(1, 50, 192)
    path = tmp_path / "shape.pt"
    torch.save(state, path)
    with pytest.raises(ConfigError, match="wrong-shape keys: pos_embed"):
        load_weights_file(timm.create_model("deit_tiny_patch16_224", num_classes=3), path, "revisiting")


def test_truncated_file(tmp_path):
    path = tmp_path / "full.pt"
    torch.save(madry_checkpoint(timm.create_model("resnet18", pretrained=False)), path)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ConfigError, match="cannot read weights file .*truncated.pt"):
        create_classifier("robust_resnet50", num_classes=3, weights=str(truncated))


def test_not_a_madry_checkpoint(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), path)
    with pytest.raises(ConfigError, match=r"not a Madry .*module\.model"):
        read_state_dict(path, "madry")


def test_robust_backbone_needs_its_file():
    with pytest.raises(ConfigError, match="--model.weights PATH"):
        create_classifier("robust_resnet50", num_classes=3, pretrained=True)

"""Backbones shared as model folders: `local-dir:DIR` and `hf-hub:ORG/NAME` (read from an HF cache the
test fills through a local stand-in for the hub, then offline), with their own head or a new one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import timm
import torch
from commands import app
from hub_server import Hub
from huggingface_hub import constants
from timm.models import save_for_hf

from modules.model.backbones import create_classifier
from modules.model.pretrained import WeightsUnavailable
from modules.registry import ConfigError

REPO = "robust-org/digits-resnet"
MEAN, STD = (0.25, 0.5, 0.75), (0.2, 0.3, 0.4)


@pytest.fixture
def folder(tmp_path) -> Path:
    """A 7-class timm model folder (random weights) with its own normalization, as `app export` writes one."""
    torch.manual_seed(2)
    net = timm.create_model("test_resnet", num_classes=7)
    save_for_hf(net, str(tmp_path / "model"), safe_serialization=True, data_config={"mean": MEAN, "std": STD})
    return tmp_path / "model"


def net_of(folder: Path) -> torch.nn.Module:
    return timm.create_model(f"local-dir:{folder}", pretrained=True).eval()


def test_a_local_folder_with_its_own_head_is_the_saved_model_with_its_normalization(folder):
    model = create_classifier(f"local-dir:{folder}", num_classes=7, pretrained=False, keep_head=True).eval()
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    expected = net_of(folder)((images - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1))
    with torch.no_grad():
        assert torch.equal(model(images), expected.detach())
    assert model.mean.flatten().tolist() == pytest.approx(MEAN) and model.std.flatten().tolist() == pytest.approx(STD)


def test_a_local_folder_starts_a_further_fine_tune_with_a_new_head(folder):
    model = create_classifier(f"local-dir:{folder}", num_classes=3)
    saved = net_of(folder).state_dict()
    loaded = model.net.state_dict()
    assert model.net.get_classifier().out_features == 3
    assert all(torch.equal(loaded[key], value) for key, value in saved.items() if not key.startswith("fc."))


def test_bad_folders_and_heads_are_one_line(folder, tmp_path):
    (tmp_path / "empty").mkdir()
    cases = [
        (f"local-dir:{tmp_path / 'empty'}", 7, True, f"{tmp_path / 'empty'} has no config.json"),
        (f"local-dir:{tmp_path / 'nowhere'}", 7, True, f"folder {tmp_path / 'nowhere'} not found"),
        (f"local-dir:{folder}", 10, True, "has 7 classes but the dataset has 10"),
        ("local-dir:", 7, False, "nothing after local-dir:"),
    ]
    for name, classes, keep_head, message in cases:
        with pytest.raises(ConfigError) as error:
            create_classifier(name, num_classes=classes, keep_head=keep_head)
        assert message in str(error.value) and "\n" not in str(error.value)


def test_a_hub_model_is_fetched_once_then_built_offline_from_the_cache(folder, tmp_path, monkeypatch):
    hub = Hub({f"{REPO}/{path.name}": path.read_bytes() for path in folder.iterdir()})
    home = tmp_path / "hf"
    name = f"hf-hub:{REPO}"
    fetched = app("weights", "fetch", name, HF_HOME=str(home), HF_ENDPOINT=hub.url)
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    assert fetched.stdout.startswith(f"fetched    {name}") and fetched.stdout.rstrip().endswith("(loads)")
    status = app("weights", "status", name, HF_HOME=str(home), HF_HUB_OFFLINE="1")
    assert status.returncode == 0 and status.stdout.startswith(f"cached     {name}")
    hub.shutdown()

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = create_classifier(name, num_classes=7, keep_head=True).eval()
    assert model.mean.flatten().tolist() == pytest.approx(MEAN)
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model.net(images), net_of(folder)(images))

    started = time.perf_counter()
    with pytest.raises(WeightsUnavailable) as error:
        create_classifier("hf-hub:robust-org/never-fetched", num_classes=7)
    assert time.perf_counter() - started < 10
    message = str(error.value)
    assert "\n" not in message and "HF_HUB_OFFLINE is set" in message
    assert "the model 'hf-hub:robust-org/never-fetched'" in message
    assert "python -m app weights fetch hf-hub:robust-org/never-fetched" in message


def test_a_local_folder_in_weights_status_and_a_bad_one(folder, tmp_path):
    done = app("weights", "status", f"local-dir:{folder}")
    assert done.returncode == 0 and done.stdout.startswith(f"local dir  local-dir:{folder}"), done.stdout
    assert str(folder / "model.safetensors") in done.stdout
    bad = app("weights", "status", f"local-dir:{tmp_path}")
    assert bad.returncode == 2 and bad.stderr.strip() == (
        f"error: backbone 'local-dir:{tmp_path}': {tmp_path} has no config.json, so it is not a timm / Hugging "
        "Face model folder (config.json + model.safetensors; `python -m app export` writes one)"
    )
